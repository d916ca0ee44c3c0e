// Two runs of one scenario side by side, typically the simulator's output folder and the
// lab's: the host-memory trajectory of each, the difference at each of the lab guests'
// markers (allocation start, touched, end ...) and over the whole run, printed and plotted.
#pragma once

#include <limits>
#include <ostream>
#include <string>
#include <vector>

namespace memvirt {

// A CSV of numbers with a header row (timeseries.csv). "nan" cells are NaN.
struct NumericTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;
  // Index of a column; -1 when absent.
  [[nodiscard]] int column(const std::string& name) const;
};
NumericTable read_numeric_csv(const std::string& path);

struct ComparePoint {
  double time_s = 0;
  std::string label;    // "vm0 w0 touched run=0"
  double a = 0, b = 0;  // each run's value at that time (linear between samples)
};

struct Comparison {
  std::string a_dir, b_dir;
  std::string a_label, b_label;  // "sim" or "lab", from the folder's contents
  std::string column;
  std::vector<std::pair<double, double>> a_series, b_series;  // (time_s, value)
  std::vector<ComparePoint> at_markers;
  double mean_abs_error = 0, max_abs_error = 0, max_error_at_s = 0;  // b - a over b's samples
  double a_mean = 0, b_mean = 0;
  double shift_s = 0;  // added to the simulator's times by `align`
};

// Reads both folders' timeseries.csv and the markers.csv of whichever has one (the second
// first). With `align`, the simulator's run (the folder without lab.json) is shifted in time
// so that its first guest starts its workloads (vm.boot.time in its config.yaml) when the
// lab's first guest did (its "init start" marker): real boot times vary with the host's load,
// and the comparison is then of what follows. Throws LabError naming the file when something
// is missing or malformed.
Comparison compare_outputs(const std::string& a_dir, const std::string& b_dir,
                           const std::string& column = "host_used_gib", bool align = false);

void print_comparison(std::ostream& out, const Comparison& c);

// Writes `png` (and, beside it, the gnuplot script and data it plots) by running gnuplot.
void plot_comparison(const Comparison& c, const std::string& png);

// Linear interpolation in a (time, value) series, clamped at its ends; NaN when empty.
double value_at(const std::vector<std::pair<double, double>>& series, double t);

}  // namespace memvirt
