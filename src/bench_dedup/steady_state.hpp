// When a dedup engine has reached its steady state: the first sample from which the merged
// page count stays within `tolerance` of that sample's value for `samples` consecutive
// samples, counting only samples where the engine has done the minimum work to have merged
// anything (KSM: two full scans; PageONE: stable_periods + 1 passes), so an early plateau at
// zero is not taken for the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

namespace memvirt {

struct SteadyStateRule {
  double tolerance = 0.01;   // relative to the window's first value
  std::uint64_t floor = 16;  // pages of slack, so a plateau near zero can count as steady
  unsigned samples = 10;     // consecutive samples in the window
};

class SteadyStateDetector {
 public:
  explicit SteadyStateDetector(SteadyStateRule rule) : rule_(rule) {}

  // Adds a sample at `t` seconds. `ready`: the engine has done its minimum work by now.
  // Returns true once steady (and keeps returning true).
  bool add(double t, std::uint64_t value, bool ready);

  [[nodiscard]] bool steady() const { return steady_.has_value(); }
  // Time and value of the window's first sample, once steady.
  [[nodiscard]] std::optional<double> time() const {
    return steady_ ? std::optional<double>(steady_->t) : std::nullopt;
  }
  [[nodiscard]] std::uint64_t value() const { return steady_ ? steady_->value : 0; }
  // Index of that sample among all samples added.
  [[nodiscard]] std::size_t index() const { return steady_ ? steady_->index : 0; }

 private:
  struct Sample {
    double t;
    std::uint64_t value;
    std::size_t index;
  };
  SteadyStateRule rule_;
  std::deque<Sample> window_;
  std::size_t added_ = 0;
  std::optional<Sample> steady_;
};

}  // namespace memvirt
