// What a sweep writes beside its runs, made from the runs' results.json as they are on disk (so
// a resumed sweep tabulates the runs of earlier invocations too):
// - sweep.csv: one row per point and seed: the point's folder, its axis values, the seed, the
//   hash of its config.yaml, then each result;
// - summary.csv: one row per point: its axis values, then for each result the number of runs
//   that report it, their mean, standard deviation and 95 % confidence interval, and the
//   trimmed mean when the sweep asks for it (statistics.hpp);
// - each table (Markdown) and plot (gnuplot script, data and, when gnuplot runs, PNG).
// Numbers are written as results.json holds them (shortest exact text), so the same results
// give the same bytes.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "sweep/plan.hpp"

namespace memvirt::sweep {

// The value at a dotted path ("run.workload_ops_per_s.1": a number indexes a list) of `j`;
// nullptr when there is none.
const nlohmann::json* find_result(const nlohmann::json& j, const std::string& path);

// A statistic of a time series (times `t` in seconds, values `v`), as sweep_file.hpp's
// SeriesStatistic defines it; nullopt for none (no samples, nothing given back).
std::optional<double> series_statistic(const std::vector<double>& t, const std::vector<double>& v,
                                       SeriesStatistic what);

struct TablesOutcome {
  std::vector<std::string> written;  // files, relative to the output folder
  // Results no run reports (a misspelt path), at their line of the sweep file.
  std::vector<InputError> problems;
  std::vector<std::string> notes;  // e.g. no gnuplot to draw the plots
};

// Writes every table of `s` into `out_dir` from the results of `plan`'s runs found there (a
// run not done leaves its row's results empty).
TablesOutcome write_tables(const SweepSpec& s, const SweepPlan& plan, const std::string& out_dir);

}  // namespace memvirt::sweep
