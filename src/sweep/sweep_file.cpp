#include "sweep/sweep_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/params.hpp"
#include "sweep/cells.hpp"

namespace memvirt::sweep {
namespace {

namespace fs = std::filesystem;

// A value as one line of text: a single value as written, anything else in YAML's flow style.
std::string one_line(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  YAML::Emitter e;
  e.SetMapFormat(YAML::Flow);
  e.SetSeqFormat(YAML::Flow);
  e << n;
  return e.c_str();
}

bool is_identifier(const std::string& s) {
  if (s.empty() || (std::isalpha(static_cast<unsigned char>(s[0])) == 0 && s[0] != '_')) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

// "reclaim.0.reclaim_period" -> "reclaim_period": the last part that is not a list index.
std::string default_name(const std::string& key) {
  std::string last;
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!part.empty() && part.find_first_not_of("0123456789") != std::string::npos) last = part;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return last;
}

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  SweepSpec read() {
    auto ctx = std::make_shared<ParamContext>(file_);
    const YAML::Node root = load_yaml_file(file_);
    Params p(root, "", ctx);
    SweepSpec s;
    s.file = file_;
    s.name = p.string("name", fs::path(file_).stem().string(), "sweep name");
    s.description = p.string("description", "", "what the sweep tabulates");
    if (!p.has("scenario")) {
      p.fail("", "missing required key 'scenario' (the base scenario file, beside this file)");
    }
    s.scenario = p.string("scenario", "", "the base scenario file, beside this file");
    s.scenario_path = existing_scenario(p, "scenario", s.scenario);

    const YAML::Node set =
        p.node("set", "values on every point, as a scenario file writes them (dotted keys too)");
    if (set.IsDefined() && !set.IsNull()) {
      if (!set.IsMap()) p.fail("set", "expected a map of scenario keys and values");
      s.set.push_back(OverrideLayer{file_, set});
    }

    for (Params a : p.sequence("axes")) s.axes.push_back(read_axis(a));
    s.seeds = static_cast<unsigned>(
        p.integer("seeds", 1,
                  "runs of each point, each with its own seed: the scenario's, then those "
                  "experiment.replicates derives from it",
                  1, 1000));
    s.seeds_place = ctx->place("seeds", root["seeds"]);
    Params summary = p.child("summary");
    s.aggregate = summary.option(
        "aggregate", Aggregate::kMean, kAggregateSpellings,
        "the value summary.csv and the tables give for a result over the seeds: mean | "
        "trimmed_mean (the highest and the lowest run dropped, the rest averaged)");
    if (s.aggregate == Aggregate::kTrimmedMean && s.seeds < 3) {
      summary.fail("aggregate", fmt::format("trimmed_mean drops the highest and the lowest run: "
                                            "it needs seeds: 3 or more (seeds: {})",
                                            s.seeds));
    }
    read_results(p, ctx, s);
    for (Params t : p.sequence("tables")) s.tables.push_back(read_table(t, s));
    for (Params g : p.sequence("plots")) s.plots.push_back(read_plot(g, s));
    ctx->check_all_read(root);
    s.effective = YAML::Clone(ctx->effective());
    return s;
  }

 private:
  std::string existing_scenario(Params& p, const std::string& key, const std::string& name) {
    const std::string path = scenario_beside(file_, name);
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      p.fail(key, fmt::format("scenario file '{}' not found (looked for {})", name, path));
    }
    return path;
  }

  SourcePlace place_of(const Params& p, const YAML::Node& node, const std::string& field) const {
    return p.context()->place(field, node);
  }

  // One entry of an axis (the axis itself, or an element of its zip). A zip element may have
  // no key: it only carries a column of text to the tables.
  AxisEntry read_entry(Params& e, bool in_zip) {
    AxisEntry out;
    if (e.has("key")) {
      out.key = e.string("key", "",
                         "the dotted scenario key the axis sets (as -p), or 'scenario' for the "
                         "base scenario file");
      out.key_node = e.node("key", "");
      if (out.key.empty() || out.key.front() == '.' || out.key.back() == '.' ||
          out.key.find("..") != std::string::npos) {
        e.fail("key", fmt::format("'{}' is not a dotted key path", out.key));
      }
    } else if (!in_zip) {
      e.fail("", "missing 'key' (the dotted scenario key the axis sets) or 'zip'");
    } else if (!e.has("name")) {
      e.fail("", "a zipped entry without 'key' sets nothing and needs a 'name' for its column");
    }
    const std::string def = out.key == kScenarioKey ? kScenarioKey : default_name(out.key);
    out.name = e.string("name", def, "the column's name in sweep.csv, tables and plots");
    if (!is_identifier(out.name)) {
      e.fail(e.has("name") ? "name" : "key",
             fmt::format("'{}' cannot name a column: use letters, digits and _ (set name:)",
                         out.name));
    }
    const YAML::Node values = e.node("values", "the values the key takes, in order");
    if (!values.IsDefined()) e.fail("", "missing 'values' (the list of values the key takes)");
    if (!values.IsSequence() || values.size() == 0) e.fail("values", "expected a list of values");
    out.place = e.context()->place(e.path() + ".values", values);
    for (std::size_t i = 0; i < values.size(); ++i) {
      const YAML::Node v = values[i];
      out.values.push_back(v);
      out.texts.push_back(one_line(v));
      if (out.key == kScenarioKey) {
        const std::string field = fmt::format("{}.values[{}]", e.path(), i);
        if (!v.IsScalar()) throw InputError(place_of(e, v, field), "expected a scenario file");
        const std::string path = scenario_beside(file_, v.Scalar());
        std::error_code ec;
        if (!fs::is_regular_file(path, ec)) {
          throw InputError(
              place_of(e, v, field),
              fmt::format("scenario file '{}' not found (looked for {})", v.Scalar(), path));
        }
      }
    }
    return out;
  }

  Axis read_axis(Params& a) {
    Axis axis;
    if (a.has("zip")) {
      if (a.has("key") || a.has("values")) {
        a.fail("zip", "an axis has either key and values, or zip");
      }
      for (Params e : a.sequence("zip")) axis.entries.push_back(read_entry(e, true));
      if (axis.entries.empty()) a.fail("zip", "expected a list of keys and values");
      const std::size_t n = axis.entries.front().values.size();
      for (std::size_t i = 1; i < axis.entries.size(); ++i) {
        if (axis.entries[i].values.size() != n) {
          throw InputError(axis.entries[i].place,
                           fmt::format("zipped lists differ in length: {} has {} values, {} has {}",
                                       axis.entries.front().name, n, axis.entries[i].name,
                                       axis.entries[i].values.size()));
        }
      }
      if (std::none_of(axis.entries.begin(), axis.entries.end(),
                       [](const AxisEntry& e) { return !e.key.empty(); })) {
        a.fail("zip", "no entry has a key: the axis would vary nothing");
      }
    } else {
      axis.entries.push_back(read_entry(a, false));
    }
    axis.place = axis.entries.front().place;
    std::string def = axis.entries.front().name;
    if (axis.entries.size() > 1) {
      def.clear();
      for (const AxisEntry& e : axis.entries) {
        if (!e.key.empty()) def += (def.empty() ? "" : "_") + e.name;
      }
    }
    axis.name = a.string("name", def, "the axis's name in folder names, tables and plots");
    if (!is_identifier(axis.name)) {
      a.fail("name", fmt::format("'{}' cannot name an axis: use letters, digits and _", axis.name));
    }
    const YAML::Node labels =
        a.node("labels", "one text per value: the point's name in folders, tables and plots");
    const std::size_t n = axis.entries.front().values.size();
    if (labels.IsDefined()) {
      if (!labels.IsSequence() || labels.size() != n) {
        a.fail("labels", fmt::format("expected a list of {} labels, one per value", n));
      }
      for (const auto& l : labels) {
        if (!l.IsScalar() || l.Scalar().empty()) a.fail("labels", "a label is a single text");
        axis.labels.push_back(l.Scalar());
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        std::string label;
        for (const AxisEntry& e : axis.entries) {
          if (!e.key.empty()) label += (label.empty() ? "" : ",") + e.texts[i];
        }
        axis.labels.push_back(label);
      }
    }
    std::set<std::string> seen;
    for (const std::string& l : axis.labels) {
      if (!seen.insert(l).second) {
        a.fail(labels.IsDefined() ? "labels" : "values",
               fmt::format("the value '{}' comes twice: points would share a folder", l));
      }
    }
    return axis;
  }

  static void read_series(const YAML::Node& r, const std::string& field,
                          const std::shared_ptr<ParamContext>& ctx, ResultColumn& c) {
    if (!r["series"].IsScalar() || r["series"].Scalar().empty()) {
      throw InputError(ctx->place(field + ".series", r["series"]),
                       "expected a column of timeseries.csv");
    }
    c.series = r["series"].Scalar();
    std::vector<std::string> names;
    for (const auto& sp : kSeriesStatisticSpellings) names.emplace_back(sp.name);
    const YAML::Node st = r["statistic"];
    if (!st) {
      throw InputError(c.place, fmt::format("missing 'statistic' of the series, one of: {}",
                                            fmt::join(names, ", ")));
    }
    for (const auto& sp : kSeriesStatisticSpellings) {
      if (st.IsScalar() && st.Scalar() == sp.name) {
        c.statistic = sp.value;
        return;
      }
    }
    throw InputError(ctx->place(field + ".statistic", st),
                     fmt::format("'{}' is not one of: {}", st.IsScalar() ? st.Scalar() : "",
                                 fmt::join(names, ", ")));
  }

  void read_results(Params& p, const std::shared_ptr<ParamContext>& ctx, SweepSpec& s) {
    const YAML::Node results =
        p.node("results", "values of results.json to tabulate: a dotted path, or {key, name}");
    if (results.IsDefined() && !results.IsSequence()) {
      p.fail("results", "expected a list of results.json paths");
    }
    for (std::size_t i = 0; results.IsDefined() && i < results.size(); ++i) {
      const YAML::Node r = results[i];
      const std::string field = fmt::format("results[{}]", i);
      ResultColumn c;
      c.place = ctx->place(field, r);
      if (r.IsScalar()) {
        c.key = r.Scalar();
      } else if (r.IsMap()) {
        for (const auto& kv : r) {
          const std::string k = kv.first.as<std::string>();
          if (k != "key" && k != "name" && k != "series" && k != "statistic") {
            throw InputError(ctx->place(field + "." + k, kv.first), "unknown key");
          }
        }
        if (r["series"]) {
          if (r["key"]) throw InputError(c.place, "a result has either key or series");
          read_series(r, field, ctx, c);
        } else if (!r["key"] || !r["key"].IsScalar()) {
          throw InputError(c.place,
                           "missing 'key' (a dotted path into results.json) or "
                           "'series' (a timeseries.csv column)");
        } else {
          c.key = r["key"].Scalar();
        }
        if (r["name"]) {
          if (!r["name"].IsScalar()) throw InputError(c.place, "name: expected a single text");
          c.name = r["name"].Scalar();
        }
      } else {
        throw InputError(c.place, "expected a dotted path into results.json, or {key, name}");
      }
      if (c.series.empty() && (c.key.empty() || c.key.front() == '.' || c.key.back() == '.' ||
                               c.key.find("..") != std::string::npos)) {
        throw InputError(c.place, fmt::format("'{}' is not a dotted path", c.key));
      }
      if (c.name.empty()) {
        c.name = c.series.empty()
                     ? c.key
                     : c.series + "_" + spelling_of(kSeriesStatisticSpellings, c.statistic);
        std::replace(c.name.begin(), c.name.end(), '.', '_');
      }
      if (!is_identifier(c.name)) {
        throw InputError(c.place, fmt::format("'{}' cannot name a column: use letters, digits "
                                              "and _ (give {{key, name}})",
                                              c.name));
      }
      s.results.push_back(c);
    }
    // Every name the tables and plots may use, once.
    std::map<std::string, std::string> names;
    auto claim = [&](const std::string& name, const std::string& what, const SourcePlace& at) {
      const auto [it, fresh] = names.emplace(name, what);
      if (!fresh && it->second != what) {
        throw InputError(
            at, fmt::format("'{}' names both {} and {}: give one of them another name (name:)",
                            name, it->second, what));
      }
    };
    for (const char* reserved : {"point", "seed", "replicate", "n", "config_hash"}) {
      claim(reserved, "a column of every sweep", SourcePlace{file_, 0, reserved});
    }
    for (const Axis& a : s.axes) {
      for (const AxisEntry& e : a.entries) claim(e.name, "a key of axis " + a.name, e.place);
      // A single-key axis may share its key's name: the name then gives the label.
      if (a.entries.size() != 1 || a.entries.front().name != a.name) {
        claim(a.name, "axis " + a.name, a.place);
      }
    }
    for (const ResultColumn& c : s.results) {
      claim(c.name, "result " + c.name, c.place);
      for (const char* suffix : {"_sd", "_ci95", "_n", "_change_pct"}) {
        claim(c.name + suffix, "result " + c.name, c.place);
      }
    }
  }

  // Names a cell may use, each with a value of its kind, to try a format before any run.
  static CellValues sample_values(const SweepSpec& s) {
    CellValues v;
    for (const Axis& a : s.axes) {
      v[a.name] = CellValue::of(a.labels.front());
      for (const AxisEntry& e : a.entries) v[e.name] = CellValue::of(e.texts.front());
    }
    v["point"] = CellValue::of(std::string("p"));
    v["n"] = CellValue::of(1.0);
    for (const ResultColumn& c : s.results) {
      v[c.name] = CellValue::of(1.0);
      v[c.name + "_sd"] = CellValue::of(1.0);
      v[c.name + "_ci95"] = CellValue::of(1.0);
      v[c.name + "_n"] = CellValue::of(1.0);
      v[c.name + "_change_pct"] = CellValue::of(1.0);
    }
    return v;
  }

  static void try_format(Params& t, const std::string& key, const std::string& format,
                         const CellValues& values) {
    try {
      (void)format_cell(format, values);
    } catch (const fmt::format_error& e) {
      t.fail(key, fmt::format("'{}': {} (names: axes, their keys' names, results, and "
                              "results with _sd, _ci95, _n or _change_pct)",
                              format, e.what()));
    }
  }

  std::vector<std::string> axis_names(Params& p, const std::string& key, const SweepSpec& s,
                                      const std::string& description) {
    const YAML::Node n = p.node(key, description);
    std::vector<std::string> out;
    if (!n.IsDefined()) return out;
    if (n.IsScalar()) {
      out.push_back(n.Scalar());
    } else if (n.IsSequence()) {
      for (const auto& x : n) {
        if (!x.IsScalar()) p.fail(key, "expected axis names");
        out.push_back(x.Scalar());
      }
    } else {
      p.fail(key, "expected an axis name or a list of them");
    }
    for (const std::string& name : out) {
      if (std::none_of(s.axes.begin(), s.axes.end(),
                       [&](const Axis& a) { return a.name == name; })) {
        p.fail(key, fmt::format("'{}' is not an axis of this sweep", name));
      }
    }
    return out;
  }

  TableSpec read_table(Params& t, const SweepSpec& s) {
    TableSpec out;
    out.place = t.context()->place(t.path(), YAML::Node());
    if (!t.has("file")) t.fail("", "missing 'file' (the Markdown file to write, NAME.md)");
    out.file = t.string("file", "", "the Markdown file written beside sweep.csv");
    if (out.file.find('/') != std::string::npos || fs::path(out.file).extension() != ".md") {
      t.fail("file", "expected a file name ending in .md");
    }
    const CellValues sample = sample_values(s);
    for (Params c : t.sequence("columns")) {
      TableColumn col;
      col.place = c.context()->place(c.path(), YAML::Node());
      col.heading = c.string("heading", "", "the column's heading");
      if (!c.has("cell")) c.fail("", "missing 'cell' (the format of the column's cells)");
      col.cell = c.string("cell", "", "the cell: a format over the point's names");
      try_format(c, "cell", col.cell, sample);
      out.columns.push_back(col);
    }
    out.across = axis_names(t, "across", s, "axes whose values become columns");
    if (!out.across.empty()) {
      out.heading = t.string("heading", "", "the heading of each across column (a format)");
      if (!t.has("cell")) t.fail("", "missing 'cell' (the format of the across columns' cells)");
      out.cell = t.string("cell", "", "the across columns' cells (a format)");
      try_format(t, "heading", out.heading, sample);
      try_format(t, "cell", out.cell, sample);
    } else if (out.columns.empty()) {
      t.fail("columns", "a table needs columns (or across and cell)");
    }
    return out;
  }

  PlotSpec read_plot(Params& g, const SweepSpec& s) {
    PlotSpec out;
    out.place = g.context()->place(g.path(), YAML::Node());
    if (!g.has("file")) g.fail("", "missing 'file' (the PNG to write, NAME.png)");
    out.file = g.string("file", "", "the PNG written beside sweep.csv");
    if (out.file.find('/') != std::string::npos || fs::path(out.file).extension() != ".png") {
      g.fail("file", "expected a file name ending in .png");
    }
    out.title = g.string("title", s.name, "the plot's title");
    out.ylabel = g.string("ylabel", "", "the y axis's label (default: the results' keys)");
    if (g.has("column")) {
      out.column = g.string("column", "", "a timeseries.csv column, over time, a line per point");
      for (const char* other : {"x", "y", "series"}) {
        if (g.has(other)) g.fail(other, "a plot has either column, or x and y");
      }
      return out;
    }
    if (!g.has("x")) g.fail("", "missing 'x' (the axis along the x axis) or 'column'");
    const std::vector<std::string> x = axis_names(g, "x", s, "the axis along the x axis");
    if (x.size() != 1) g.fail("x", "expected one axis");
    out.x = x.front();
    const YAML::Node y = g.node("y", "results plotted against x");
    if (!y.IsDefined()) g.fail("", "missing 'y' (the results to plot)");
    if (y.IsScalar()) {
      out.y.push_back(y.Scalar());
    } else if (y.IsSequence()) {
      for (const auto& n : y) out.y.push_back(n.IsScalar() ? n.Scalar() : std::string());
    }
    if (out.y.empty()) g.fail("y", "expected a result name or a list of them");
    for (const std::string& name : out.y) {
      if (std::none_of(s.results.begin(), s.results.end(),
                       [&](const ResultColumn& c) { return c.name == name; })) {
        g.fail("y", fmt::format("'{}' is not a result of this sweep", name));
      }
    }
    out.series = axis_names(g, "series", s, "axes drawn as one line per value");
    for (const Axis& a : s.axes) {
      const bool named = a.name == out.x || std::find(out.series.begin(), out.series.end(),
                                                      a.name) != out.series.end();
      if (!named && a.size() > 1) {
        g.fail("series", fmt::format("axis '{}' varies too: name it in series, or it draws "
                                     "several points at one x",
                                     a.name));
      }
    }
    return out;
  }

  std::string file_;
};

}  // namespace

std::string scenario_beside(const std::string& sweep_file, const std::string& name) {
  const fs::path p(name);
  if (p.is_absolute()) return p.string();
  return (fs::path(sweep_file).parent_path() / p).lexically_normal().string();
}

SweepSpec load_sweep(const std::string& file) {
  return Reader(file).read();
}

}  // namespace memvirt::sweep
