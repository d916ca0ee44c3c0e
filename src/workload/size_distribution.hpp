// Size distributions for allocation amounts (seed 000's periodic allocations).
#pragma once

#include "core/params.hpp"
#include "core/rng.hpp"
#include "core/types.hpp"

namespace memvirt {

class SizeDistribution {
 public:
  // `dist`: constant (value) | uniform (min, max) | truncated_exponential (mean, max).
  static SizeDistribution from_params(Params p);
  [[nodiscard]] Bytes draw(Rng& rng) const;
  [[nodiscard]] Bytes mean() const;
  [[nodiscard]] Bytes max() const { return max_; }

 private:
  enum class Kind { kConstant, kUniform, kTruncatedExponential } kind_ = Kind::kConstant;
  Bytes min_{}, max_{};
  double rate_ = 0;  // 1/bytes, truncated exponential
};

}  // namespace memvirt
