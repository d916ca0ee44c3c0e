// A sweep file: a base scenario, the axes whose values make its points, how many seeds each
// point runs with, the results to tabulate, and the tables and plots made of them. Read with
// Params like a scenario (every key declared where it is read, unknown keys errors with their
// line); the values an axis gives a scenario are kept as written, with their lines, and merged
// onto the scenario as a layer (core/compose.hpp), so an error in one names the sweep file.
#pragma once

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/spelling.hpp"
#include "scenario/scenario.hpp"

namespace memvirt::sweep {

// The key of an axis that picks the base scenario file instead of setting a value in it.
inline constexpr const char* kScenarioKey = "scenario";

// One key an axis sets, and its values in order. A zipped axis has several, of one length.
struct AxisEntry {
  std::string key;   // dotted key path into the scenario (as -p), kScenarioKey, or empty: a
                     // column of text beside each point that sets nothing
  std::string name;  // its column in sweep.csv and its name in tables and plots
  std::vector<YAML::Node> values;  // as written, each with its line
  std::vector<std::string> texts;  // each value as one line of text
  YAML::Node key_node;             // the `key:` scalar as written (its line), when there is one
  SourcePlace place;               // of its `values:`
};

struct Axis {
  std::string name;  // names the axis in folder names, tables and plots
  std::vector<AxisEntry> entries;
  std::vector<std::string> labels;  // one per value: given as `labels:`, else the entries' texts
  SourcePlace place;
  [[nodiscard]] std::size_t size() const { return labels.size(); }
};

// What a result taken from a column of timeseries.csv is (`series:` and `statistic:`):
// - max, min, last: of the column over the run;
// - give_back_s: seconds from the column's peak until it has come 90 % of the way down to the
//   lowest value it reaches in the 120 s after the peak; none when it comes down by less than
//   0.01 (nothing is given back). The all-mechanism comparison's "free -> host" (a guest's
//   memory coming back to the host after its program exits, sampled every second).
enum class SeriesStatistic : std::uint8_t { kMax, kMin, kLast, kGiveBack };
inline constexpr std::array<Spelling<SeriesStatistic>, 4> kSeriesStatisticSpellings{
    {{SeriesStatistic::kMax, "max"},
     {SeriesStatistic::kMin, "min"},
     {SeriesStatistic::kLast, "last"},
     {SeriesStatistic::kGiveBack, "give_back_s"}}};

// A result to tabulate: a value of results.json at a dotted path ("run.vms_killed_by_host_oom",
// "run.workload_ops_per_s.1"), or a statistic of a column of timeseries.csv; and the name of
// its column.
struct ResultColumn {
  std::string key;     // empty for a series
  std::string series;  // a timeseries.csv column
  SeriesStatistic statistic = SeriesStatistic::kMax;
  std::string name;
  SourcePlace place;
};

// A Markdown table. Without `across`: one row per point, a column per entry of `columns`.
// With `across`: points that differ only in those axes share a row; `columns` lead it (taken
// from its first point) and each value combination of the across axes adds a column headed
// `heading`, holding `cell`. Cells and headings are fmt format strings over the names of axes,
// axis entries and results: a result's summary value, its `_sd`, `_ci95` (half-width) and `_n`
// (runs that report it), and in across cells `_change_pct`, its change from the row's first
// across column in percent.
struct TableColumn {
  std::string heading;
  std::string cell;
  SourcePlace place;
};
struct TableSpec {
  std::string file;
  std::vector<TableColumn> columns;
  std::vector<std::string> across;
  std::string heading;
  std::string cell;
  SourcePlace place;
};

// A gnuplot plot of results against an axis: one line per value of the `series` axes, the
// 95 % confidence interval as error bars when a point has more than one seed. Or, with
// `column`, a column of timeseries.csv over time: one line per point (its first seed's run).
struct PlotSpec {
  std::string file;  // the PNG; the .gp script (and .dat data) beside it
  std::string column;
  std::string x;
  std::vector<std::string> y;
  std::vector<std::string> series;
  std::string title;
  std::string ylabel;
  SourcePlace place;
};

struct SweepSpec {
  std::string file;  // the sweep file, as named
  std::string name;
  std::string description;
  std::string scenario;            // the base scenario: as written in the sweep file
  std::string scenario_path;       // ... and found beside the sweep file
  std::vector<OverrideLayer> set;  // `set:`, values on every point (none or one layer)
  std::vector<Axis> axes;
  unsigned seeds = 1;
  SourcePlace seeds_place;
  Aggregate aggregate = Aggregate::kMean;  // summary.csv's value and the tables' numbers
  std::vector<ResultColumn> results;
  std::vector<TableSpec> tables;
  std::vector<PlotSpec> plots;
  YAML::Node effective;
};

// Reads `file`. Throws InputError naming file, line and field for anything wrong: unknown
// keys, an axis without values, zipped lists of different lengths, a name used twice, a
// table cell or plot that names nothing the sweep has.
SweepSpec load_sweep(const std::string& file);

// A scenario file named in the sweep (`scenario:` or a value of the scenario axis) found
// beside the sweep file when relative.
std::string scenario_beside(const std::string& sweep_file, const std::string& name);

}  // namespace memvirt::sweep
