#include "core/types.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "core/units.hpp"

namespace memvirt {
namespace {

// Rounding, not truncation, also in constant expressions.
static_assert(Duration::seconds(4.1).ns() == 4'100'000'000);
static_assert(Duration::seconds(-4.1).ns() == -4'100'000'000);

TEST(Duration, SecondsRoundToTheNearestNanosecond) {
  // 4.1 * 1e9 is 4099999999.9999995 in double; truncation gave 4'099'999'999.
  EXPECT_EQ(Duration::seconds(4.1).ns(), 4'100'000'000);
  EXPECT_EQ(Duration::seconds(0.3).ns(), 300'000'000);
  EXPECT_EQ(Duration::seconds(1e-9).ns(), 1);
  EXPECT_EQ(Duration::seconds(0.4e-9).ns(), 0);
  EXPECT_EQ(Duration::seconds(0.6e-9).ns(), 1);
  EXPECT_EQ(Duration::seconds(3600).ns(), 3'600'000'000'000);
  EXPECT_EQ(Duration::seconds(0).ns(), 0);
}

TEST(Duration, SecondsRoundsAsLlround) {
  std::mt19937_64 gen(1);
  std::uniform_real_distribution<double> small(-10.0, 10.0);
  std::uniform_real_distribution<double> large(-9e9, 9e9);
  for (int i = 0; i < 100'000; ++i) {
    for (const double s : {small(gen), large(gen), small(gen) * 1e-6}) {
      ASSERT_EQ(Duration::seconds(s).ns(), std::llround(s * 1e9)) << s;
    }
  }
}

TEST(Duration, ParserAndSecondsAgree) {
  for (const char* text : {"4.1", "0.3", "2.5", "0.1", "1.1", "12.345678901", "7.77", "1800",
                           "0.000000001", "59.999"}) {
    std::string why;
    const auto parsed = parse_duration(std::string(text) + "s", &why);
    ASSERT_TRUE(parsed.has_value()) << text << ": " << why;
    EXPECT_EQ(parsed->ns(), Duration::seconds(std::stod(text)).ns()) << text;
  }
  std::string why;
  EXPECT_EQ(parse_duration("4.1s", &why)->ns(), 4'100'000'000);
}

}  // namespace
}  // namespace memvirt
