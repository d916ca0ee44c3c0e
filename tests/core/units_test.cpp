#include "core/units.hpp"

#include <gtest/gtest.h>

#include "core/params.hpp"

namespace memvirt {
namespace {

TEST(Units, ParsesSizesInDecimalAndBinaryUnits) {
  std::string why;
  EXPECT_EQ(parse_bytes("4GiB", &why)->value(), 4ULL << 30);
  EXPECT_EQ(parse_bytes("150MB", &why)->value(), 150'000'000ULL);
  EXPECT_EQ(parse_bytes("150MiB", &why)->value(), 150ULL << 20);
  EXPECT_EQ(parse_bytes("4096", &why)->value(), 4096ULL);
  EXPECT_EQ(parse_bytes(" 2 KiB ", &why)->value(), 2048ULL);
  EXPECT_EQ(parse_bytes("1.5GiB", &why)->value(), 3ULL << 29);
  EXPECT_EQ(parse_bytes("1TiB", &why)->value(), 1ULL << 40);
}

TEST(Units, RejectsBadSizesWithAReason) {
  for (const char* bad : {"", "-4GiB", "4XB", "GiB", "1.5", "4 Gibibytes", "1e30GiB", "nan"}) {
    std::string why;
    EXPECT_FALSE(parse_bytes(bad, &why).has_value()) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

TEST(Units, ParsesDurations) {
  std::string why;
  EXPECT_EQ(parse_duration("30min", &why)->ns(), 1800LL * 1'000'000'000);
  EXPECT_EQ(parse_duration("2s", &why)->ns(), 2'000'000'000LL);
  EXPECT_EQ(parse_duration("20ms", &why)->ns(), 20'000'000LL);
  EXPECT_EQ(parse_duration("1.5h", &why)->ns(), 5400LL * 1'000'000'000);
  EXPECT_EQ(parse_duration("10", &why)->ns(), 10'000'000'000LL);
  EXPECT_EQ(parse_duration("250ns", &why)->ns(), 250);
}

TEST(Units, RejectsBadDurations) {
  for (const char* bad : {"", "-1s", "5 fortnights", "s", "1e20d"}) {
    std::string why;
    EXPECT_FALSE(parse_duration(bad, &why).has_value()) << bad;
    EXPECT_FALSE(why.empty());
  }
}

TEST(Units, CanonicalFormsRoundTrip) {
  for (std::uint64_t v : {4096ULL, 150'000'000ULL, 4ULL << 30, 12345ULL, 3ULL << 29}) {
    std::string why;
    EXPECT_EQ(parse_bytes(canonical_bytes(Bytes{v}), &why)->value(), v)
        << canonical_bytes(Bytes{v});
  }
  for (std::int64_t v : {1LL, 1'000'000'000LL, 1'800'000'000'000LL, 1'500'000LL}) {
    std::string why;
    EXPECT_EQ(parse_duration(canonical_duration(Duration{v}), &why)->ns(), v);
  }
}

}  // namespace
}  // namespace memvirt
