#include <gtest/gtest.h>

#include "core/params.hpp"
#include "workload/size_distribution.hpp"

namespace memvirt {
namespace {

SizeDistribution dist(const std::string& yaml) {
  auto ctx = std::make_shared<ParamContext>("d.yaml");
  return SizeDistribution::from_params(Params(YAML::Load(yaml), "", ctx));
}

TEST(SizeDistribution, TruncatedExponentialHasTheRequestedMeanAndBound) {
  const SizeDistribution d = dist("{dist: truncated_exponential, mean: 150MiB, max: 3GiB}");
  EXPECT_NEAR(d.mean().mib(), 150.0, 0.5);
  Rng rng(1, "t");
  double sum = 0;
  double largest = 0;
  constexpr int kDraws = 200000;
  for (int i = 0; i < kDraws; ++i) {
    const Bytes b = d.draw(rng);
    ASSERT_LE(b, Bytes{3ULL << 30});
    ASSERT_EQ(b.value() % kPageSize, 0U);
    sum += b.mib();
    largest = std::max(largest, b.mib());
  }
  EXPECT_NEAR(sum / kDraws, 150.0, 2.0);
  EXPECT_GT(largest, 1000.0);  // the tail is reached in 200k draws
}

TEST(SizeDistribution, UniformAndConstant) {
  Rng rng(2, "t");
  const SizeDistribution u = dist("{dist: uniform, min: 1MiB, max: 3MiB}");
  for (int i = 0; i < 1000; ++i) {
    const Bytes b = u.draw(rng);
    ASSERT_GE(b, Bytes{1ULL << 20});
    ASSERT_LE(b, Bytes{3ULL << 20});
  }
  EXPECT_EQ(dist("{dist: constant, value: 3GiB}").draw(rng), Bytes{3ULL << 30});
  EXPECT_THROW(dist("{dist: uniform, min: 3MiB, max: 1MiB}"), InputError);
  EXPECT_THROW(dist("{dist: truncated_exponential, mean: 3GiB, max: 3GiB}"), InputError);
  EXPECT_THROW(dist("{dist: gaussian}"), InputError);
}

}  // namespace
}  // namespace memvirt
