#include "workload/size_distribution.hpp"

#include <cmath>

namespace memvirt {

SizeDistribution SizeDistribution::from_params(Params p) {
  SizeDistribution d;
  const std::string dist =
      p.choice("dist", "constant", {"constant", "uniform", "truncated_exponential"},
               "distribution of the amount");
  if (dist == "constant") {
    d.kind_ = Kind::kConstant;
    d.min_ = d.max_ = p.required_bytes("value", "the amount");
  } else if (dist == "uniform") {
    d.kind_ = Kind::kUniform;
    d.min_ = p.bytes("min", Bytes{0}, "smallest amount");
    d.max_ = p.required_bytes("max", "largest amount");
    if (d.max_ < d.min_) p.fail("max", "is smaller than min");
  } else {
    d.kind_ = Kind::kTruncatedExponential;
    const Bytes mean = p.required_bytes("mean", "mean amount");
    d.max_ = p.required_bytes("max", "largest amount (the exponential is truncated here)");
    if (mean.value() == 0 || mean >= d.max_) p.fail("mean", "must be above 0 and below max");
    // Solve for the rate whose truncation at max has the requested mean:
    // mean(r) = 1/r - M / (exp(r M) - 1), decreasing in r. Bisection on r.
    const double M = static_cast<double>(d.max_.value());
    const double target = static_cast<double>(mean.value());
    if (target >= M / 2) p.fail("mean", "must be below max/2 for a decreasing density");
    double lo = 1e-30, hi = 1.0;
    for (int i = 0; i < 200; ++i) {
      const double r = std::sqrt(lo * hi);
      const double m = 1 / r - M / std::expm1(r * M);
      (m > target ? lo : hi) = r;
    }
    d.rate_ = std::sqrt(lo * hi);
  }
  return d;
}

Bytes SizeDistribution::draw(Rng& rng) const {
  auto page_round = [](double b) {
    return Bytes{static_cast<std::uint64_t>(b) & ~(kPageSize - 1)};
  };
  switch (kind_) {
    case Kind::kConstant:
      return max_;
    case Kind::kUniform:
      return page_round(static_cast<double>(min_.value()) +
                        rng.uniform() * static_cast<double>(max_.value() - min_.value()));
    case Kind::kTruncatedExponential: {
      // Inverse CDF of the exponential restricted to [0, max].
      const double M = static_cast<double>(max_.value());
      const double u = rng.uniform();
      return page_round(-std::log1p(u * std::expm1(-rate_ * M)) / rate_);
    }
  }
  return max_;
}

Bytes SizeDistribution::mean() const {
  switch (kind_) {
    case Kind::kConstant:
      return max_;
    case Kind::kUniform:
      return Bytes{(min_.value() + max_.value()) / 2};
    case Kind::kTruncatedExponential: {
      const double M = static_cast<double>(max_.value());
      return Bytes{static_cast<std::uint64_t>(1 / rate_ - M / std::expm1(rate_ * M))};
    }
  }
  return max_;
}

}  // namespace memvirt
