// The operator's bounds on balloon targets: --min, --max and --limit NAME=MIN:MAX, sizes or
// shares of the guest's memory; malformed ones are errors naming the flag and the value.
#include "control/limits.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace memvirt {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::uint64_t kGiB = 1ULL << 30;

std::string error_of(const std::string& min, const std::string& max,
                     const std::vector<std::string>& limits) {
  try {
    GuestLimits::parse(min, max, limits);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

ResolvedBounds resolved(const GuestLimits& l, const std::string& name, Bytes memory) {
  std::string why;
  const std::optional<ResolvedBounds> r = resolve_bounds(l.bounds_of(name), memory, &why);
  EXPECT_TRUE(r.has_value()) << why;
  return r.value_or(ResolvedBounds{});
}

TEST(GuestLimits, DefaultsAreHalfToAllOfTheGuestsMemory) {
  const GuestLimits l = GuestLimits::parse("", "", {});
  const ResolvedBounds b = resolved(l, "any", Bytes{2 * kGiB});
  EXPECT_EQ(b.min, Bytes{kGiB});
  EXPECT_EQ(b.max, Bytes{2 * kGiB});
}

TEST(GuestLimits, SizesSharesAndPerGuestOverrides) {
  const GuestLimits l =
      GuestLimits::parse("25%", "3GiB", {"web=1GiB:", "db=:75%", "batch=256MiB:512MiB"});
  // Defaults: 25% of 4 GiB, and 3 GiB.
  ResolvedBounds b = resolved(l, "other", Bytes{4 * kGiB});
  EXPECT_EQ(b.min, Bytes{kGiB});
  EXPECT_EQ(b.max, Bytes{3 * kGiB});
  // A maximum is never more than the guest has.
  b = resolved(l, "other", Bytes{2 * kGiB});
  EXPECT_EQ(b.max, Bytes{2 * kGiB});
  b = resolved(l, "web", Bytes{4 * kGiB});  // its own minimum, the default maximum
  EXPECT_EQ(b.min, Bytes{kGiB});
  EXPECT_EQ(b.max, Bytes{3 * kGiB});
  b = resolved(l, "db", Bytes{4 * kGiB});  // the default minimum, its own maximum
  EXPECT_EQ(b.min, Bytes{kGiB});
  EXPECT_EQ(b.max, Bytes{3 * kGiB});
  b = resolved(l, "batch", Bytes{4 * kGiB});
  EXPECT_EQ(b.min, Bytes{256 * kMiB});
  EXPECT_EQ(b.max, Bytes{512 * kMiB});
  EXPECT_EQ(l.named(), (std::vector<std::string>{"batch", "db", "web"}));
}

TEST(GuestLimits, SharesAreWholePages) {
  const GuestLimits l = GuestLimits::parse("33.3%", "", {});
  const ResolvedBounds b = resolved(l, "x", Bytes{kGiB + 5});
  EXPECT_EQ(b.min.value() % 4096, 0U);
  EXPECT_LE(b.min.value(), static_cast<std::uint64_t>(0.333 * (kGiB + 5)));
  EXPECT_GT(b.min.value(), static_cast<std::uint64_t>(0.333 * (kGiB + 5)) - 4096);
  EXPECT_EQ(b.max, Bytes{kGiB});
}

TEST(GuestLimits, ContradictionsFoundOnlyWithTheGuestAreReported) {
  // 1 GiB against 50%: fine for a 4 GiB guest, not for a 1.5 GiB one.
  const GuestLimits l = GuestLimits::parse("1GiB", "50%", {});
  EXPECT_EQ(resolved(l, "big", Bytes{4 * kGiB}).min, Bytes{kGiB});
  std::string why;
  EXPECT_FALSE(resolve_bounds(l.bounds_of("small"), Bytes{1536 * kMiB}, &why));
  EXPECT_EQ(why,
            "minimum 1.00 GiB (1.00 GiB) is more than maximum 768.0 MiB (50%) for a guest of "
            "1.50 GiB");
}

TEST(GuestLimits, MalformedValuesNameTheFlagAndValue) {
  EXPECT_EQ(error_of("lots", "", {}),
            "--min: 'lots': expected a size (512MiB) or a share of the guest's memory (50%)");
  EXPECT_EQ(error_of("", "120%", {}),
            "--max: '120%': a share of the guest's memory is between 0% "
            "and 100%");
  EXPECT_EQ(error_of("", "x%", {}),
            "--max: 'x%': expected a size (512MiB) or a share of the guest's memory (50%)");
  EXPECT_EQ(error_of("2GiB", "1GiB", {}), "--min: '2GiB' is more than --max '1GiB'");
  EXPECT_EQ(error_of("60%", "50%", {}), "--min: '60%' is more than --max '50%'");
  EXPECT_EQ(error_of("", "", {"web"}),
            "--limit: 'web': expected NAME=MIN:MAX (either bound may be empty)");
  EXPECT_EQ(error_of("", "", {"web=1GiB"}),
            "--limit: 'web=1GiB': expected NAME=MIN:MAX (either bound may be empty)");
  EXPECT_EQ(error_of("", "", {"=1GiB:2GiB"}),
            "--limit: '=1GiB:2GiB': expected NAME=MIN:MAX (either bound may be empty)");
  EXPECT_EQ(error_of("", "", {"web=:"}), "--limit: 'web=:': gives neither a minimum nor a maximum");
  EXPECT_EQ(error_of("", "", {"web=2GiB:1GiB"}),
            "--limit: 'web=2GiB:1GiB': the minimum is more than the maximum");
  EXPECT_EQ(error_of("", "", {"web=60%:40%"}),
            "--limit: 'web=60%:40%': the minimum is more than the maximum");
  EXPECT_EQ(error_of("10%", "40%", {"web=60%:"}),
            "--limit: 'web=60%:': the minimum is more than the maximum");  // against --max
  EXPECT_EQ(error_of("", "40%", {}), "--max: '40%' is less than --min's default, 50%");
  EXPECT_EQ(error_of("", "", {"web=1Gib:"}),
            "--limit: 'web=1Gib:': '1Gib' has unknown size unit 'Gib' (use B, kB, MB, GB, TB, "
            "KiB, MiB, GiB, TiB)");
  EXPECT_EQ(error_of("", "", {"web=1GiB:", "web=:2GiB"}),
            "--limit: 'web=:2GiB': web has a --limit already");
}

}  // namespace
}  // namespace memvirt
