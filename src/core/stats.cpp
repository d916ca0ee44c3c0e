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

std::uint64_t Histogram::quantile_bound(double q) const {
  if (count_ == 0) return 0;
  const auto target = static_cast<std::uint64_t>(q * static_cast<double>(count_));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen > target) return i == 0 ? 0 : (i >= 64 ? UINT64_MAX : (1ULL << i) - 1);
  }
  return max_;
}

}  // namespace memvirt
