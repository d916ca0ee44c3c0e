#include "core/stats.hpp"

namespace memvirt {

void TimeWeightedGauge::reset(TimePoint now, double value) {
  start_ = last_ = now;
  value_ = min_ = max_ = value;
  integral_ = 0;
  started_ = true;
}

void TimeWeightedGauge::set(TimePoint now, double value) {
  if (!started_) {
    reset(now, value);
    return;
  }
  integral_ += static_cast<long double>(value_) * static_cast<long double>((now - last_).ns());
  last_ = now;
  value_ = value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

double TimeWeightedGauge::mean() const {
  const auto span = (last_ - start_).ns();
  if (span <= 0) return value_;
  return static_cast<double>(integral_ / static_cast<long double>(span));
}

}  // namespace memvirt
