#include "lab/compare.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/units.hpp"
#include "lab/files.hpp"
#include "lab/lab_error.hpp"
#include "lab/process.hpp"

namespace memvirt {
namespace fs = std::filesystem;
namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<std::pair<double, double>> series_of(const NumericTable& t, const std::string& column,
                                                 const std::string& file) {
  const int tc = t.column("time_s");
  const int vc = t.column(column);
  if (tc < 0 || vc < 0) {
    throw LabError(fmt::format("{}: no '{}' column", file, tc < 0 ? "time_s" : column));
  }
  std::vector<std::pair<double, double>> s;
  for (const auto& r : t.rows) {
    if (!std::isnan(r[vc])) s.emplace_back(r[tc], r[vc]);
  }
  return s;
}

std::string backend_of(const std::string& dir) {
  return fs::exists(fs::path(dir) / "lab.json") ? "lab" : "sim";
}

}  // namespace

int NumericTable::column(const std::string& name) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return static_cast<int>(i);
  }
  return -1;
}

NumericTable read_numeric_csv(const std::string& path) {
  std::istringstream in(read_file(path));
  NumericTable t;
  std::string line;
  if (!std::getline(in, line)) throw LabError(fmt::format("{}: empty", path));
  t.columns = split_csv(line);
  int n = 1;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    const auto cells = split_csv(line);
    if (cells.size() != t.columns.size()) {
      throw LabError(fmt::format("{}:{}: {} cells, the header has {}", path, n, cells.size(),
                                 t.columns.size()));
    }
    std::vector<double> row;
    for (const auto& c : cells) {
      char* end = nullptr;
      const double v = std::strtod(c.c_str(), &end);
      if (c.empty() || *end != '\0') {
        throw LabError(fmt::format("{}:{}: '{}' is not a number", path, n, c));
      }
      row.push_back(v);
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

double value_at(const std::vector<std::pair<double, double>>& s, double t) {
  if (s.empty()) return std::nan("");
  if (t <= s.front().first) return s.front().second;
  if (t >= s.back().first) return s.back().second;
  const auto hi =
      std::lower_bound(s.begin(), s.end(), t, [](const auto& p, double x) { return p.first < x; });
  const auto lo = hi - 1;
  const double span = hi->first - lo->first;
  if (span <= 0) return hi->second;
  return lo->second + (hi->second - lo->second) * (t - lo->first) / span;
}

namespace {

// The first guest's workload start: "init start" in a lab folder's markers.csv, vm.boot.time
// in a simulator folder's config.yaml.
double workload_start(const std::string& dir) {
  const fs::path markers = fs::path(dir) / "markers.csv";
  if (fs::exists(fs::path(dir) / "lab.json")) {
    std::istringstream in(read_file(markers.string()));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      const auto cells = split_csv(line);
      if (cells.size() >= 5 && cells[1] == "0" && cells[3] == "init" && cells[4] == "start") {
        return std::strtod(cells[0].c_str(), nullptr);
      }
    }
    throw LabError(fmt::format("{}: no 'init start' marker of vm0 to align on", markers.string()));
  }
  const std::string config = (fs::path(dir) / "config.yaml").string();
  try {
    const YAML::Node c = YAML::LoadFile(config);
    if (!c["vm"] || !c["vm"]["boot"] || !c["vm"]["boot"]["time"]) return 0;
    std::string why;
    const auto d = parse_duration(c["vm"]["boot"]["time"].as<std::string>(), &why);
    if (!d) throw LabError(fmt::format("{}: vm.boot.time: {}", config, why));
    return d->seconds();
  } catch (const YAML::Exception& e) {
    throw LabError(fmt::format("{}: {}", config, e.what()));
  }
}

}  // namespace

Comparison compare_outputs(const std::string& a_dir, const std::string& b_dir,
                           const std::string& column, bool align) {
  Comparison c;
  c.a_dir = a_dir;
  c.b_dir = b_dir;
  c.column = column;
  c.a_label = backend_of(a_dir);
  c.b_label = backend_of(b_dir);
  if (c.a_label == c.b_label) {
    c.a_label += " (" + fs::path(a_dir).filename().string() + ")";
    c.b_label += " (" + fs::path(b_dir).filename().string() + ")";
  }
  const std::string a_csv = (fs::path(a_dir) / "timeseries.csv").string();
  const std::string b_csv = (fs::path(b_dir) / "timeseries.csv").string();
  c.a_series = series_of(read_numeric_csv(a_csv), column, a_csv);
  c.b_series = series_of(read_numeric_csv(b_csv), column, b_csv);
  if (c.a_series.empty() || c.b_series.empty()) {
    throw LabError(
        fmt::format("no samples of {} in {}", column, c.a_series.empty() ? a_csv : b_csv));
  }
  if (align && c.a_label != c.b_label) {
    // Shift whichever run is the simulator's onto the lab's clock.
    const bool a_is_sim = c.a_label == "sim";
    const std::string& sim = a_is_sim ? a_dir : b_dir;
    const std::string& lab = a_is_sim ? b_dir : a_dir;
    c.shift_s = workload_start(lab) - workload_start(sim);
    for (auto& p : a_is_sim ? c.a_series : c.b_series) p.first += c.shift_s;
  }

  // Errors over the second run's samples within the time both runs cover.
  const double end = std::min(c.a_series.back().first, c.b_series.back().first);
  double sum = 0, sum_a = 0, sum_b = 0;
  int n = 0;
  for (const auto& [t, v] : c.b_series) {
    if (t > end) break;
    const double a = value_at(c.a_series, t);
    const double e = v - a;
    sum += std::abs(e);
    sum_a += a;
    sum_b += v;
    ++n;
    if (std::abs(e) > c.max_abs_error) {
      c.max_abs_error = std::abs(e);
      c.max_error_at_s = t;
    }
  }
  if (n > 0) {
    c.mean_abs_error = sum / n;
    c.a_mean = sum_a / n;
    c.b_mean = sum_b / n;
  }

  for (const std::string& dir : {b_dir, a_dir}) {
    const fs::path markers = fs::path(dir) / "markers.csv";
    if (!fs::exists(markers)) continue;
    std::istringstream in(read_file(markers.string()));
    std::string line;
    std::getline(in, line);  // header: time_s,vm,guest_s,tag,event,fields
    while (std::getline(in, line)) {
      const auto cells = split_csv(line);
      if (cells.size() < 6) continue;
      const std::string& tag = cells[3];
      const std::string& event = cells[4];
      const bool workload = tag.size() > 1 && tag[0] == 'w';
      const bool wanted = workload || tag == "host" || (tag == "init" && event == "start");
      if (!wanted || event == "progress" || event == "row") continue;
      ComparePoint p;
      p.time_s = std::strtod(cells[0].c_str(), nullptr);
      if (p.time_s > end) continue;
      std::string fields = cells[5];
      if (const auto sp = fields.find(' '); sp != std::string::npos) fields.resize(sp);
      p.label =
          fmt::format("vm{} {} {}{}", cells[1], tag, event, fields.empty() ? "" : " " + fields);
      p.a = value_at(c.a_series, p.time_s);
      p.b = value_at(c.b_series, p.time_s);
      c.at_markers.push_back(p);
    }
    break;
  }
  return c;
}

void print_comparison(std::ostream& out, const Comparison& c) {
  fmt::print(out, "{} ({}) vs {} ({}): {}\n", c.a_label, c.a_dir, c.b_label, c.b_dir, c.column);
  if (c.shift_s != 0) {
    fmt::print(out, "  simulator shifted by {:+.2f} s: its workloads start when the lab's do\n",
               c.shift_s);
  }
  if (!c.at_markers.empty()) {
    fmt::print(out, "  {:>8}  {:<34} {:>9} {:>9} {:>9}\n", "time s", "marker",
               c.a_label.substr(0, 9), c.b_label.substr(0, 9), "error");
    for (const auto& p : c.at_markers) {
      fmt::print(out, "  {:8.1f}  {:<34} {:9.3f} {:9.3f} {:+9.3f}\n", p.time_s, p.label, p.a, p.b,
                 p.b - p.a);
    }
  }
  fmt::print(out, "  mean {}: {:.3f} vs {:.3f}; mean |error| {:.3f}, largest {:.3f} at {:.1f} s\n",
             c.column, c.a_mean, c.b_mean, c.mean_abs_error, c.max_abs_error, c.max_error_at_s);
}

void plot_comparison(const Comparison& c, const std::string& png) {
  const fs::path base = fs::path(png).replace_extension("");
  const std::string a_dat = base.string() + "-a.dat";
  const std::string b_dat = base.string() + "-b.dat";
  const std::string m_dat = base.string() + "-markers.dat";
  const std::string script = base.string() + ".gp";
  auto write_series = [](const std::string& path, const auto& s) {
    std::string text;
    for (const auto& [t, v] : s) text += fmt::format("{} {}\n", t, v);
    write_file_atomic(path, text);
  };
  write_series(a_dat, c.a_series);
  write_series(b_dat, c.b_series);
  std::string m;
  for (const auto& p : c.at_markers) {
    std::string label = p.label;
    std::replace(label.begin(), label.end(), '"', '\'');
    m += fmt::format("{} {} {} \"{} ({:+.2f})\"\n", p.time_s, p.a, p.b, label, p.b - p.a);
  }
  write_file_atomic(m_dat, m);
  auto q = [](const std::string& s) {
    std::string o = "'";
    for (char ch : s) o += ch == '\'' ? std::string("''") : std::string(1, ch);
    return o + "'";
  };
  std::string gp;
  gp += "set terminal pngcairo size 1200,700 noenhanced font ',10'\n";
  gp += fmt::format("set output {}\n", q(png));
  gp += fmt::format("set title {}\n",
                    q(fmt::format("{}: {} vs {} (mean |error| {:.3f}, largest {:.3f})", c.column,
                                  c.a_label, c.b_label, c.mean_abs_error, c.max_abs_error)));
  // Headroom above the curves for the rotated marker labels; the key below them.
  gp += "set xlabel 'time (s)'\nset ylabel " + q(c.column) +
        "\nset key bottom right opaque\nset grid\nset offsets 0, 0, graph 0.3, 0\n"
        "set yrange [0:*]\n";
  gp += fmt::format(
      "plot {} using 1:2 with lines lw 2 title {}, {} using 1:2 with lines lw 2 title {}", q(a_dat),
      q(c.a_label), q(b_dat), q(c.b_label));
  if (!c.at_markers.empty()) {
    gp += fmt::format(", {} using 1:3 with points pt 7 ps 1 title 'markers (error = {} - {})'",
                      q(m_dat), c.b_label, c.a_label);
    gp += fmt::format(
        ", {} using 1:3:4 with labels rotate by 60 left offset 0.5,0.5 font ',8' "
        "notitle",
        q(m_dat));
  }
  gp += "\n";
  write_file_atomic(script, gp);
  const std::string gnuplot = ChildProcess::find_program("gnuplot");
  if (gnuplot.empty())
    throw LabError("gnuplot not found: install gnuplot-nox (bash scripts/setup.sh)");
  const std::string log = base.string() + ".log";
  ChildProcess p("gnuplot", {gnuplot, script}, log);
  while (!p.poll_exit()) {
    char buf[256];
    if (p.stdout_fd() >= 0 && read(p.stdout_fd(), buf, sizeof buf) == 0) p.close_stdout();
    usleep(20000);
  }
  const std::string status = *p.poll_exit();
  if (status != "exit status 0") {
    throw LabError(fmt::format("gnuplot failed ({}): {}", status, read_file(log)));
  }
  std::error_code ec;
  fs::remove(log, ec);
}

}  // namespace memvirt
