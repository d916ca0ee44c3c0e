#include "sweep/statistics.hpp"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "scenario/replicates.hpp"

namespace memvirt::sweep {

Summary summarize(std::span<const double> values, Aggregate how) {
  if (values.empty()) throw std::invalid_argument("summarize: no values");
  std::vector<double> v(values.begin(), values.end());
  std::sort(v.begin(), v.end());
  Summary s;
  s.n = v.size();
  s.mean = aggregate(v, Aggregate::kMean);
  if (s.n >= 2) {
    double squares = 0;
    for (const double x : v) squares += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(squares / static_cast<double>(s.n - 1));
    const boost::math::students_t t(static_cast<double>(s.n - 1));
    s.ci95 = boost::math::quantile(t, 0.975) * *s.sd / std::sqrt(static_cast<double>(s.n));
  }
  if (how == Aggregate::kTrimmedMean && s.n >= 3) s.trimmed_mean = aggregate(v, how);
  return s;
}

}  // namespace memvirt::sweep
