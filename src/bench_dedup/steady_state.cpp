#include "bench_dedup/steady_state.hpp"

#include <algorithm>
#include <cmath>

namespace memvirt {

bool SteadyStateDetector::add(double t, std::uint64_t value, bool ready) {
  const std::size_t index = added_++;
  if (steady_) return true;
  if (!ready) {
    window_.clear();
    return false;
  }
  window_.push_back(Sample{t, value, index});
  // Drop samples from the front until every sample lies within the first one's band.
  auto fits = [&](const Sample& first) {
    const double band = std::max(rule_.tolerance * static_cast<double>(first.value),
                                 static_cast<double>(rule_.floor));
    return std::all_of(window_.begin(), window_.end(), [&](const Sample& s) {
      return std::fabs(static_cast<double>(s.value) - static_cast<double>(first.value)) <= band;
    });
  };
  while (!window_.empty() && !fits(window_.front())) window_.pop_front();
  if (window_.size() >= std::max(1U, rule_.samples)) steady_ = window_.front();
  return steady_.has_value();
}

}  // namespace memvirt
