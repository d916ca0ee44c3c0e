// Typed statistics. Components own their stat members (no string-keyed maps on hot paths) and
// expose them through visit_stats(StatsVisitor&), which writers use to format them.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
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

// Current value with its peak.
class Gauge {
 public:
  void set(std::int64_t v) {
    value_ = v;
    peak_ = std::max(peak_, v);
  }
  void add(std::int64_t d) { set(value_ + d); }
  [[nodiscard]] std::int64_t value() const { return value_; }
  [[nodiscard]] std::int64_t peak() const { return peak_; }

 private:
  std::int64_t value_ = 0;
  std::int64_t peak_ = 0;
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

// Log2-bucketed histogram of non-negative values.
class Histogram {
 public:
  void record(std::uint64_t v) {
    ++buckets_[v == 0 ? 0 : std::bit_width(v)];
    ++count_;
    sum_ += v;
    max_ = std::max(max_, v);
  }
  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }
  [[nodiscard]] std::uint64_t max() const { return max_; }
  // Upper bound of the bucket holding quantile q (0..1).
  [[nodiscard]] std::uint64_t quantile_bound(double q) const;

 private:
  std::array<std::uint64_t, 65> buckets_{};
  std::uint64_t count_ = 0, sum_ = 0, max_ = 0;
};

class StatsVisitor {
 public:
  virtual ~StatsVisitor() = default;
  virtual void counter(std::string_view name, const Counter& c) = 0;
  virtual void gauge(std::string_view name, const Gauge& g) = 0;
  virtual void histogram(std::string_view name, const Histogram& h) = 0;
  // A value derived from the model's state (e.g. KSM's pages_shared), not stored as a stat.
  virtual void value(std::string_view name, double v) = 0;
};

// Rows of numbers with named columns, written as CSV by the report writers.
class TimeSeries {
 public:
  explicit TimeSeries(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  void add_row(std::vector<double> row) { rows_.push_back(std::move(row)); }
  [[nodiscard]] const std::vector<std::string>& columns() const { return columns_; }
  [[nodiscard]] const std::vector<std::vector<double>>& rows() const { return rows_; }

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<double>> rows_;
};

}  // namespace memvirt
