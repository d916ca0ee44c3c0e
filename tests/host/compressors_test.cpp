// The real page compressors: every one round-trips zero, random and text-like pages exactly,
// is deterministic, grows incompressible pages (so tmem stores them raw), and reports corrupt
// input instead of crashing.
#include "host/compressors.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "page_samples.hpp"

namespace memvirt {
namespace {

using testing::Page;

class CompressorsTest : public ::testing::TestWithParam<Compressor> {
 protected:
  std::unique_ptr<PageCompressor> c = make_page_compressor(GetParam());
  std::vector<std::byte> out = std::vector<std::byte>(c->max_compressed_bytes());

  std::size_t round_trip(const Page& page) {
    const std::size_t n = c->compress(page, out);
    EXPECT_GT(n, 0U);
    EXPECT_LE(n, out.size());
    Page back(4096, std::byte{0x5a});
    EXPECT_TRUE(c->decompress(std::span(out).first(n), back));
    EXPECT_EQ(back, page);
    return n;
  }
};

TEST_P(CompressorsTest, KindIsTheOneAskedFor) {
  EXPECT_EQ(c->kind(), GetParam());
}

TEST_P(CompressorsTest, ZeroPageRoundTripsAndShrinksToAFewBytes) {
  EXPECT_LT(round_trip(testing::zero_page()), 128U);
}

TEST_P(CompressorsTest, TextPageRoundTripsAndCompresses) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    EXPECT_LT(round_trip(testing::text_page(seed)), 4096U * 3 / 4) << "seed " << seed;
  }
}

TEST_P(CompressorsTest, RandomPageRoundTripsAndDoesNotShrink) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    EXPECT_GE(round_trip(testing::random_page(seed)), 4096U) << "seed " << seed;
  }
}

TEST_P(CompressorsTest, EqualPagesGiveEqualCompressedBytes) {
  const Page page = testing::text_page(7);
  const std::size_t n = c->compress(page, out);
  const std::vector<std::byte> first(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
  // Another page in between, so leftover work memory would show.
  (void)c->compress(testing::text_page(8), out);
  ASSERT_EQ(c->compress(page, out), n);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), out.begin()));
  // A second object of the same kind agrees.
  auto other = make_page_compressor(GetParam());
  std::vector<std::byte> out2(other->max_compressed_bytes());
  ASSERT_EQ(other->compress(page, out2), n);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), out2.begin()));
}

TEST_P(CompressorsTest, CorruptOrTruncatedInputIsReportedNotDecoded) {
  const Page page = testing::text_page(3);
  const std::size_t n = c->compress(page, out);
  Page back(4096);
  EXPECT_FALSE(c->decompress(std::span(out).first(n / 2), back)) << "truncated";
  EXPECT_FALSE(c->decompress({}, back)) << "empty";
  std::vector<std::byte> garbage(n, std::byte{0xff});
  EXPECT_FALSE(c->decompress(garbage, back)) << "garbage";
  Page small(100);
  EXPECT_FALSE(c->decompress(std::span(out).first(n), small)) << "output smaller than a page";
}

TEST_P(CompressorsTest, WrongSizesAreRefused) {
  Page half(2048);
  EXPECT_THROW((void)c->compress(half, out), std::invalid_argument);
  std::vector<std::byte> tiny(16);
  EXPECT_THROW((void)c->compress(testing::zero_page(), tiny), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(All, CompressorsTest,
                         ::testing::Values(Compressor::kLzo1x1, Compressor::kLz4,
                                           Compressor::kZstd),
                         [](const ::testing::TestParamInfo<Compressor>& param) {
                           return std::string(param.param == Compressor::kLzo1x1 ? "lzo"
                                              : param.param == Compressor::kLz4  ? "lz4"
                                                                                 : "zstd");
                         });

}  // namespace
}  // namespace memvirt
