#include <gtest/gtest.h>

#include "core/rng.hpp"
#include "translation/escape_filter.hpp"

namespace memvirt::translation {
namespace {

TEST(BloomEscapeFilter, NoFalseNegatives) {
  EscapeFilter f(256, 4, 1);
  Rng rng(7, "bloom.test");
  std::vector<std::uint64_t> keys;
  for (int i = 0; i < 16; ++i) keys.push_back(rng.next() >> 20);
  for (auto k : keys) f.insert(k);
  for (auto k : keys) EXPECT_TRUE(f.maybe_contains(k));
}

// The measured false-positive rate of filled filters matches (1 - e^{-kn/m})^k, averaged over
// several H3 matrices (one matrix alone can sit a little above or below).
TEST(BloomEscapeFilter, FalsePositiveRateMatchesTheory) {
  struct Case {
    std::uint32_t bits, hashes, inserted;
  };
  for (const Case c : {Case{256, 4, 16}, Case{4096, 4, 512}, Case{1024, 2, 64}}) {
    const double theory =
        EscapeFilter::theoretical_false_positive_rate(c.bits, c.hashes, c.inserted);
    std::uint64_t hits = 0, probes = 0;
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
      EscapeFilter f(c.bits, c.hashes, seed);
      Rng rng(seed, "bloom.keys");
      // Page numbers of a 64 GiB guest, inserted ones drawn from the low half, probes from the
      // high half so none of them was inserted.
      for (std::uint32_t i = 0; i < c.inserted; ++i) f.insert(rng.below(1ULL << 23));
      for (int i = 0; i < 40000; ++i) {
        hits += f.maybe_contains((1ULL << 23) + rng.below(1ULL << 23)) ? 1 : 0;
        ++probes;
      }
    }
    const double measured = static_cast<double>(hits) / static_cast<double>(probes);
    EXPECT_NEAR(measured, theory, 0.2 * theory + 0.0005)
        << c.bits << " bits, " << c.hashes << " hashes, " << c.inserted << " keys";
  }
}

TEST(BloomEscapeFilter, TheoryFormula) {
  EXPECT_NEAR(EscapeFilter::theoretical_false_positive_rate(256, 4, 16), 0.002394, 1e-5);
  EXPECT_EQ(EscapeFilter::theoretical_false_positive_rate(256, 4, 0), 0.0);
}

}  // namespace
}  // namespace memvirt::translation
