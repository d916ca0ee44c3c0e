#include "sweep/tables.hpp"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "record/output_dir.hpp"
#include "sweep/cells.hpp"
#include "sweep/statistics.hpp"

extern char** environ;

namespace memvirt::sweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A text as one CSV field: quoted when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += csv_field(fields[i]);
  }
  out += '\n';
  return out;
}

// A gnuplot string in single quotes, where a quote is written twice.
std::string gp_quoted(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// A number as the shortest text that reads back to it.
std::string number_text(double v) {
  return fmt::format("{}", v);
}

// A result as sweep.csv writes it: numbers and booleans as results.json has them, texts as
// they are; nothing when absent.
std::string value_text(const json* v) {
  if (v == nullptr || v->is_null()) return "";
  if (v->is_string()) return v->get<std::string>();
  return v->dump();
}

std::optional<double> value_number(const json* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number()) return v->get<double>();
  if (v->is_boolean()) return v->get<bool>() ? 1.0 : 0.0;
  return std::nullopt;
}

// A point's axis columns: a single-key axis named as its key gives its label; any other axis
// its label, then each of its keys' values.
struct AxisColumn {
  std::string name;
  std::size_t axis;
  std::optional<std::size_t> entry;  // none: the axis's label
};

std::vector<AxisColumn> axis_columns(const SweepSpec& s) {
  std::vector<AxisColumn> out;
  for (std::size_t a = 0; a < s.axes.size(); ++a) {
    const Axis& axis = s.axes[a];
    out.push_back({axis.name, a, std::nullopt});
    if (axis.entries.size() == 1 && axis.entries.front().name == axis.name) continue;
    for (std::size_t e = 0; e < axis.entries.size(); ++e) {
      out.push_back({axis.entries[e].name, a, e});
    }
  }
  return out;
}

std::string axis_text(const SweepSpec& s, const AxisColumn& c, const Point& p) {
  const Axis& axis = s.axes[c.axis];
  const std::size_t v = p.value[c.axis];
  return c.entry ? axis.entries[*c.entry].texts[v] : axis.labels[v];
}

// Every run's results.json, parsed; null for a run not done.
std::vector<json> read_results(const SweepPlan& plan, const std::string& out_dir) {
  std::vector<json> out;
  out.reserve(plan.runs.size());
  for (const PlannedRun& r : plan.runs) {
    std::ifstream in(fs::path(out_dir) / r.folder / "results.json");
    out.push_back(in ? json::parse(in, nullptr, false) : json());
    if (out.back().is_discarded()) out.back() = json();
  }
  return out;
}

// A column of a run's timeseries.csv: whether the run has it, and the statistic's value.
struct SeriesValue {
  bool found = false;
  std::optional<double> value;
};

SeriesValue series_value(const fs::path& csv, const std::string& column, SeriesStatistic what) {
  std::ifstream in(csv);
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  std::vector<std::string> head;
  std::stringstream hs(line);
  for (std::string h; std::getline(hs, h, ',');) head.push_back(h);
  const auto col = std::find(head.begin(), head.end(), column);
  const auto time = std::find(head.begin(), head.end(), "time_s");
  if (col == head.end() || time == head.end()) return {};
  const auto ci = static_cast<std::size_t>(col - head.begin());
  const auto ti = static_cast<std::size_t>(time - head.begin());
  std::vector<double> t, m;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) cells.push_back(c);
    if (cells.size() <= std::max(ci, ti)) continue;
    t.push_back(std::stod(cells[ti]));
    m.push_back(std::stod(cells[ci]));
  }
  return SeriesValue{true, series_statistic(t, m, what)};
}

struct PointSummary {
  std::size_t runs = 0;                    // with results
  std::vector<std::optional<Summary>> of;  // per result column
};

class Writer {
 public:
  Writer(const SweepSpec& s, const SweepPlan& plan, const std::string& out_dir)
      : s_(s), plan_(plan), dir_(out_dir), results_(read_results(plan, out_dir)) {
    // Every run's value of every result: null where it has none.
    found_.assign(s.results.size(), false);
    values_.resize(plan.runs.size());
    for (std::size_t r = 0; r < plan.runs.size(); ++r) {
      for (std::size_t c = 0; c < s.results.size(); ++c) {
        const ResultColumn& col = s.results[c];
        json v;
        if (!results_[r].is_null() && col.series.empty()) {
          if (const json* at = find_result(results_[r], col.key)) {
            v = *at;
            found_[c] = true;
          }
        } else if (!results_[r].is_null()) {
          const SeriesValue sv =
              series_value(fs::path(out_dir) / plan.runs[r].folder / "timeseries.csv", col.series,
                           col.statistic);
          found_[c] = found_[c] || sv.found;
          if (sv.value) v = *sv.value;
        }
        values_[r].push_back(std::move(v));
      }
    }
    summaries_.resize(plan.points.size());
    for (std::size_t p = 0; p < plan.points.size(); ++p) {
      PointSummary& sum = summaries_[p];
      for (std::size_t c = 0; c < s.results.size(); ++c) {
        std::vector<double> values;
        for (std::size_t r = 0; r < plan.runs.size(); ++r) {
          if (plan.runs[r].point != p) continue;
          if (const auto v = value_number(&values_[r][c])) values.push_back(*v);
        }
        sum.of.push_back(values.empty() ? std::nullopt
                                        : std::optional(summarize(values, s.aggregate)));
      }
      for (std::size_t r = 0; r < plan.runs.size(); ++r) {
        if (plan.runs[r].point == p && !results_[r].is_null()) ++sum.runs;
      }
    }
  }

  TablesOutcome write() {
    TablesOutcome out;
    const OutputDir dir(dir_);
    dir.write("sweep.csv", [&](std::ostream& f) { sweep_csv(f); });
    out.written.emplace_back("sweep.csv");
    dir.write("summary.csv", [&](std::ostream& f) { summary_csv(f); });
    out.written.emplace_back("summary.csv");
    for (const TableSpec& t : s_.tables) {
      dir.write(t.file, [&](std::ostream& f) { table(t, f); });
      out.written.push_back(t.file);
    }
    for (const PlotSpec& p : s_.plots) plot(p, dir, out);
    // A result that no finished run reports is a misspelt path, not a missing value.
    bool any_done = false;
    for (const json& j : results_) any_done = any_done || !j.is_null();
    for (std::size_t c = 0; c < s_.results.size(); ++c) {
      if (!any_done || found_[c]) continue;
      const ResultColumn& col = s_.results[c];
      out.problems.emplace_back(
          col.place, col.series.empty()
                         ? fmt::format("'{}' is in no run's results.json", col.key)
                         : fmt::format("'{}' is a column of no run's timeseries.csv", col.series));
    }
    return out;
  }

 private:
  void sweep_csv(std::ostream& f) const {
    const std::vector<AxisColumn> axes = axis_columns(s_);
    std::vector<std::string> head{"point"};
    for (const AxisColumn& c : axes) head.push_back(c.name);
    for (const char* h : {"replicate", "seed", "config_hash"}) head.emplace_back(h);
    for (const ResultColumn& c : s_.results) head.push_back(c.name);
    f << csv_row(head);
    for (std::size_t r = 0; r < plan_.runs.size(); ++r) {
      const PlannedRun& run = plan_.runs[r];
      const Point& p = plan_.points[run.point];
      std::vector<std::string> row{run.folder};
      for (const AxisColumn& c : axes) row.push_back(axis_text(s_, c, p));
      row.push_back(std::to_string(run.replicate));
      row.push_back(std::to_string(run.seed));
      row.push_back(run.config_hash);
      for (const json& v : values_[r]) row.push_back(value_text(&v));
      f << csv_row(row);
    }
  }

  void summary_csv(std::ostream& f) const {
    const std::vector<AxisColumn> axes = axis_columns(s_);
    const bool trimmed = s_.aggregate == Aggregate::kTrimmedMean;
    std::vector<std::string> head{"point"};
    for (const AxisColumn& c : axes) head.push_back(c.name);
    head.emplace_back("runs");
    for (const ResultColumn& c : s_.results) {
      for (const char* suffix : {"_n", "_mean", "_sd", "_ci95_low", "_ci95_high"}) {
        head.push_back(c.name + suffix);
      }
      if (trimmed) head.push_back(c.name + "_trimmed_mean");
    }
    f << csv_row(head);
    auto opt = [](const std::optional<double>& v) { return v ? number_text(*v) : std::string(); };
    for (std::size_t p = 0; p < plan_.points.size(); ++p) {
      const Point& point = plan_.points[p];
      std::vector<std::string> row{point.folder};
      for (const AxisColumn& c : axes) row.push_back(axis_text(s_, c, point));
      row.push_back(std::to_string(summaries_[p].runs));
      for (std::size_t c = 0; c < s_.results.size(); ++c) {
        const std::optional<Summary>& sum = summaries_[p].of[c];
        if (!sum) {
          row.insert(row.end(), trimmed ? 6 : 5, "");
          continue;
        }
        row.push_back(std::to_string(sum->n));
        row.push_back(number_text(sum->mean));
        row.push_back(opt(sum->sd));
        row.push_back(sum->ci95 ? number_text(sum->mean - *sum->ci95) : "");
        row.push_back(sum->ci95 ? number_text(sum->mean + *sum->ci95) : "");
        if (trimmed) row.push_back(opt(sum->trimmed_mean));
      }
      f << csv_row(row);
    }
  }

  // The names a cell of point `p` formats.
  [[nodiscard]] CellValues cell_values(std::size_t p) const {
    CellValues v;
    const Point& point = plan_.points[p];
    for (std::size_t a = 0; a < s_.axes.size(); ++a) {
      const Axis& axis = s_.axes[a];
      for (const AxisEntry& e : axis.entries) v[e.name] = CellValue::of(e.texts[point.value[a]]);
      v[axis.name] = CellValue::of(axis.labels[point.value[a]]);
    }
    v["point"] = CellValue::of(point.folder);
    v["n"] = CellValue::of(static_cast<double>(summaries_[p].runs));
    for (std::size_t c = 0; c < s_.results.size(); ++c) {
      const std::string& name = s_.results[c].name;
      const std::optional<Summary>& sum = summaries_[p].of[c];
      v[name] = sum ? CellValue::of(sum->value()) : CellValue::none();
      v[name + "_sd"] = sum && sum->sd ? CellValue::of(*sum->sd) : CellValue::none();
      v[name + "_ci95"] = sum && sum->ci95 ? CellValue::of(*sum->ci95) : CellValue::none();
      v[name + "_n"] = CellValue::of(sum ? static_cast<double>(sum->n) : 0.0);
      v[name + "_change_pct"] = CellValue::none();
    }
    return v;
  }

  // cell_values(p) with each result's change from point `base`, in percent: an across
  // table's cells against the first across column of their row.
  [[nodiscard]] CellValues cell_values(std::size_t p, std::size_t base) const {
    CellValues v = cell_values(p);
    for (std::size_t c = 0; c < s_.results.size(); ++c) {
      const std::optional<Summary>& here = summaries_[p].of[c];
      const std::optional<Summary>& there = summaries_[base].of[c];
      if (here && there && there->value() != 0) {
        v[s_.results[c].name + "_change_pct"] =
            CellValue::of((here->value() / there->value() - 1) * 100);
      }
    }
    return v;
  }

  static std::string md_cell(std::string text) {
    std::string out;
    for (const char c : text) {
      if (c == '|') out += '\\';
      out += c == '\n' ? ' ' : c;
    }
    return out;
  }

  static void md_row(std::ostream& f, const std::vector<std::string>& cells) {
    f << "|";
    for (const std::string& c : cells) f << " " << md_cell(c) << " |";
    f << "\n";
  }

  void table(const TableSpec& t, std::ostream& f) const {
    std::vector<std::size_t> across;  // axis indices
    for (const std::string& name : t.across) {
      for (std::size_t a = 0; a < s_.axes.size(); ++a) {
        if (s_.axes[a].name == name) across.push_back(a);
      }
    }
    auto key_of = [&](const Point& p, bool of_across) {
      std::vector<std::size_t> k;
      for (std::size_t a = 0; a < s_.axes.size(); ++a) {
        const bool is_across = std::find(across.begin(), across.end(), a) != across.end();
        if (is_across == of_across) k.push_back(p.value[a]);
      }
      return k;
    };
    // Rows and across columns in the order their first point comes.
    std::vector<std::vector<std::size_t>> rows, cols;
    std::vector<std::size_t> row_first, col_first;
    std::map<std::pair<std::vector<std::size_t>, std::vector<std::size_t>>, std::size_t> at;
    for (std::size_t p = 0; p < plan_.points.size(); ++p) {
      const auto rk = key_of(plan_.points[p], false);
      const auto ck = key_of(plan_.points[p], true);
      if (std::find(rows.begin(), rows.end(), rk) == rows.end()) {
        rows.push_back(rk);
        row_first.push_back(p);
      }
      if (std::find(cols.begin(), cols.end(), ck) == cols.end()) {
        cols.push_back(ck);
        col_first.push_back(p);
      }
      at[{rk, ck}] = p;
    }
    std::vector<std::string> head;
    for (const TableColumn& c : t.columns) head.push_back(c.heading);
    if (!across.empty()) {
      for (const std::size_t p : col_first) head.push_back(format_cell(t.heading, cell_values(p)));
    }
    md_row(f, head);
    md_row(f, std::vector<std::string>(head.size(), "---"));
    for (std::size_t r = 0; r < rows.size(); ++r) {
      std::vector<std::string> cells;
      const CellValues first = cell_values(row_first[r]);
      for (const TableColumn& c : t.columns) cells.push_back(format_cell(c.cell, first));
      if (!across.empty()) {
        const auto base = at.find({rows[r], cols.front()});
        for (const auto& ck : cols) {
          const auto it = at.find({rows[r], ck});
          if (it == at.end()) {
            cells.emplace_back();
          } else if (base == at.end()) {
            cells.push_back(format_cell(t.cell, cell_values(it->second)));
          } else {
            cells.push_back(format_cell(t.cell, cell_values(it->second, base->second)));
          }
        }
      }
      md_row(f, cells);
    }
  }

  void plot(const PlotSpec& g, const OutputDir& dir, TablesOutcome& out) const {
    const std::string stem = fs::path(g.file).stem().string();
    if (!g.column.empty()) {
      series_plot(g, dir, stem);
    } else {
      results_plot(g, dir, stem);
      out.written.push_back(stem + ".dat");
    }
    out.written.push_back(stem + ".gp");
    if (const std::string why = run_gnuplot(dir.path(), stem + ".gp"); !why.empty()) {
      out.notes.push_back(fmt::format("{}: not drawn ({}); the script is {}", g.file, why,
                                      (fs::path(dir.path()) / (stem + ".gp")).string()));
    } else {
      out.written.push_back(g.file);
    }
  }

  static void plot_head(std::ostream& f, const PlotSpec& g, const std::string& from,
                        const std::string& xlabel, const std::string& ylabel) {
    f << "# " << g.title << ": made by memvirt sweep from " << from << "\n"
      << "set terminal pngcairo size 1000,600 noenhanced font ',10'\n"
      << "set output " << gp_quoted(g.file) << "\n"
      << "set title " << gp_quoted(g.title) << "\n"
      << "set key outside right\n"
      << "set grid\n"
      << "set xlabel " << gp_quoted(xlabel) << "\n"
      << "set ylabel " << gp_quoted(ylabel) << "\n";
  }

  // A timeseries.csv column of every point's first run, over time in minutes.
  void series_plot(const PlotSpec& g, const OutputDir& dir, const std::string& stem) const {
    dir.write(stem + ".gp", [&](std::ostream& f) {
      plot_head(f, g, "each run's timeseries.csv", "time (min)",
                g.ylabel.empty() ? g.column : g.ylabel);
      f << "set datafile separator ','\nset datafile columnheaders\n"
        << "plot";
      bool first = true;
      for (const PlannedRun& run : plan_.runs) {
        if (run.replicate != 0) continue;
        const std::string csv = run.folder + "/timeseries.csv";
        f << (first ? " " : ", \\\n     ") << gp_quoted(csv)
          << " using (column('time_s')/60):(column(" << gp_quoted(g.column)
          << ")) with lines lw 2 title " << gp_quoted(plan_.points[run.point].folder);
        first = false;
      }
      f << "\n";
    });
  }

  void results_plot(const PlotSpec& g, const OutputDir& dir, const std::string& stem) const {
    std::size_t x_axis = 0;
    std::vector<std::size_t> series;
    for (std::size_t a = 0; a < s_.axes.size(); ++a) {
      if (s_.axes[a].name == g.x) x_axis = a;
      if (std::find(g.series.begin(), g.series.end(), s_.axes[a].name) != g.series.end()) {
        series.push_back(a);
      }
    }
    const Axis& xa = s_.axes[x_axis];
    bool numeric = true;
    for (const std::string& l : xa.labels) {
      try {
        std::size_t used = 0;
        (void)std::stod(l, &used);
        numeric = numeric && used == l.size();
      } catch (const std::exception&) {
        numeric = false;
      }
    }
    std::vector<std::size_t> result_index;
    for (const std::string& y : g.y) {
      for (std::size_t c = 0; c < s_.results.size(); ++c) {
        if (s_.results[c].name == y) result_index.push_back(c);
      }
    }
    // One data block per combination of the series axes, in the order their points come.
    std::vector<std::vector<std::size_t>> blocks;  // series values -> points
    std::vector<std::vector<std::size_t>> block_points;
    for (std::size_t p = 0; p < plan_.points.size(); ++p) {
      std::vector<std::size_t> k;
      for (const std::size_t a : series) k.push_back(plan_.points[p].value[a]);
      auto it = std::find(blocks.begin(), blocks.end(), k);
      if (it == blocks.end()) {
        blocks.push_back(k);
        block_points.emplace_back();
        it = blocks.end() - 1;
      }
      block_points[static_cast<std::size_t>(it - blocks.begin())].push_back(p);
    }
    dir.write(stem + ".dat", [&](std::ostream& f) {
      for (std::size_t b = 0; b < blocks.size(); ++b) {
        if (b > 0) f << "\n\n";
        f << "# x_index\tx";
        for (const std::size_t c : result_index) {
          const std::string& n = s_.results[c].name;
          f << "\t" << n << "\t" << n << "_ci95_low\t" << n << "_ci95_high";
        }
        f << "\n";
        for (const std::size_t p : block_points[b]) {
          const std::size_t xi = plan_.points[p].value[x_axis];
          f << xi << "\t" << xa.labels[xi];
          for (const std::size_t c : result_index) {
            const std::optional<Summary>& sum = summaries_[p].of[c];
            if (!sum) {
              f << "\tNaN\tNaN\tNaN";
              continue;
            }
            const double ci = sum->ci95.value_or(0);
            f << "\t" << number_text(sum->value()) << "\t" << number_text(sum->mean - ci) << "\t"
              << number_text(sum->mean + ci);
          }
          f << "\n";
        }
      }
    });
    const bool bars = s_.seeds > 1;
    dir.write(stem + ".gp", [&](std::ostream& f) {
      std::string ylabel = g.ylabel;
      if (ylabel.empty()) {
        for (const std::size_t c : result_index) {
          const ResultColumn& col = s_.results[c];
          ylabel += (ylabel.empty() ? "" : ", ") + (col.key.empty() ? col.series : col.key);
        }
      }
      plot_head(f, g, stem + ".dat", xa.name, ylabel);
      f << "set datafile separator '\\t'\n";
      if (!numeric) f << "set offsets 0.5, 0.5, 0, 0\n";
      f << "plot";
      bool first = true;
      for (std::size_t b = 0; b < blocks.size(); ++b) {
        std::string label;
        for (std::size_t k = 0; k < series.size(); ++k) {
          label += (label.empty() ? "" : ", ") + s_.axes[series[k]].name + "=" +
                   s_.axes[series[k]].labels[blocks[b][k]];
        }
        for (std::size_t y = 0; y < result_index.size(); ++y) {
          const std::string& name = s_.results[result_index[y]].name;
          const std::size_t col = 3 + 3 * y;
          std::string title = label;
          if (result_index.size() > 1 || title.empty()) {
            title += (title.empty() ? "" : ": ") + name;
          }
          const std::string x = numeric ? "2" : "1";
          const std::string using_ = bars ? fmt::format("{}:{}:{}:{}", x, col, col + 1, col + 2)
                                          : fmt::format("{}:{}", x, col);
          f << (first ? " " : ", \\\n     ") << "'" << stem << ".dat' index " << b << " using "
            << using_ << (numeric ? "" : ":xtic(2)") << " with "
            << (bars ? "yerrorlines" : "linespoints") << " lw 2 title " << gp_quoted(title);
          first = false;
        }
      }
      f << "\n";
    });
  }

  // Runs gnuplot on `script` in `dir`; empty when it drew, else why not.
  static std::string run_gnuplot(const std::string& dir, const std::string& script) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    std::string prog = "gnuplot";
    std::vector<char*> argv{prog.data(), const_cast<char*>(script.c_str()), nullptr};
    pid_t pid = 0;
    const int err = posix_spawnp(&pid, prog.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) return fmt::format("gnuplot: {}", std::strerror(err));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "gnuplot failed";
    return {};
  }

  const SweepSpec& s_;
  const SweepPlan& plan_;
  std::string dir_;
  std::vector<json> results_;
  std::vector<std::vector<json>> values_;  // per run, per result
  std::vector<bool> found_;                // per result: some run has it
  std::vector<PointSummary> summaries_;
};

}  // namespace

std::optional<double> series_statistic(const std::vector<double>& t, const std::vector<double>& m,
                                       SeriesStatistic what) {
  if (m.empty() || t.size() != m.size()) return std::nullopt;
  switch (what) {
    case SeriesStatistic::kMax:
      return *std::max_element(m.begin(), m.end());
    case SeriesStatistic::kMin:
      return *std::min_element(m.begin(), m.end());
    case SeriesStatistic::kLast:
      return m.back();
    case SeriesStatistic::kGiveBack: {
      // The first peak, the lowest value within 120 s of it, the first sample 90 % of the way
      // down (sweep_file.hpp).
      const auto peak = static_cast<std::size_t>(std::max_element(m.begin(), m.end()) - m.begin());
      double low = m[peak];
      for (std::size_t i = peak; i < m.size() && t[i] <= t[peak] + 120; ++i) {
        low = std::min(low, m[i]);
      }
      if (m[peak] - low < 0.01) return std::nullopt;
      const double target = m[peak] - 0.9 * (m[peak] - low);
      for (std::size_t i = peak; i < m.size(); ++i) {
        if (m[i] <= target) return t[i] - t[peak];
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

const json* find_result(const json& j, const std::string& path) {
  const json* at = &j;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t dot = path.find('.', start);
    const std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (at->is_object()) {
      const auto it = at->find(part);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array() && !part.empty() &&
               part.find_first_not_of("0123456789") == std::string::npos && part.size() < 10) {
      const std::size_t i = std::stoul(part);
      if (i >= at->size()) return nullptr;
      at = &(*at)[i];
    } else {
      return nullptr;
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return at;
}

TablesOutcome write_tables(const SweepSpec& s, const SweepPlan& plan, const std::string& out_dir) {
  return Writer(s, plan, out_dir).write();
}

}  // namespace memvirt::sweep
