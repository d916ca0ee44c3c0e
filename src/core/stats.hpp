// Typed statistics. Components own their stat members (no string-keyed maps on hot paths) and
// expose them through visit_stats(StatsVisitor&), which writers use to format them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"

namespace memvirt {

// Only increases.
class Counter {
 public:
  void add(std::uint64_t n = 1) { value_ += n; }
  [[nodiscard]] std::uint64_t value() const { return value_; }

 private:
  std::uint64_t value_ = 0;
};

// A step function of virtual time: min, max and time-weighted mean over a window that starts
// at reset().
class TimeWeightedGauge {
 public:
  void reset(TimePoint now, double value);
  void set(TimePoint now, double value);
  // Closes the window at `now` (includes the current value up to now).
  void close(TimePoint now) { set(now, value_); }
  [[nodiscard]] double min() const { return min_; }
  [[nodiscard]] double max() const { return max_; }
  [[nodiscard]] double mean() const;
  [[nodiscard]] double value() const { return value_; }

 private:
  TimePoint start_{}, last_{};
  double value_ = 0, min_ = 0, max_ = 0;
  long double integral_ = 0;
  bool started_ = false;
};

class StatsVisitor {
 public:
  virtual ~StatsVisitor() = default;
  virtual void counter(std::string_view name, const Counter& c) = 0;
  // A value derived from the model's state (e.g. KSM's pages_shared), not stored as a stat.
  virtual void value(std::string_view name, double v) = 0;
};

// Rows of numbers with named columns, written as CSV by the report writers.
class TimeSeries {
 public:
  explicit TimeSeries(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  // Only before the first row.
  void add_column(std::string name) { columns_.push_back(std::move(name)); }
  void add_row(std::vector<double> row) { rows_.push_back(std::move(row)); }
  [[nodiscard]] const std::vector<std::string>& columns() const { return columns_; }
  [[nodiscard]] const std::vector<std::vector<double>>& rows() const { return rows_; }

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<double>> rows_;
};

}  // namespace memvirt
