// The guest's swap and zswap counters as the lab reads them from its console markers: every
// field a number, a garbled or missing one a clear error naming it.
#include "lab/guest_samples.hpp"

#include <gtest/gtest.h>

#include "lab/lab_error.hpp"

namespace memvirt {
namespace {

// A zswap marker as guest/meminfo.cpp prints it (Linux 6.1's debugfs files, sorted).
const char* kZswapLine =
    "@@memvirt 54.412979 sys zswap duplicate_entry=0 pool_limit_hit=576 pool_total_size=95928320 "
    "reject_alloc_fail=0 reject_compress_poor=0 reject_kmemcache_fail=0 reject_reclaim_fail=0 "
    "same_filled_pages=2 stored_pages=46811 written_back_pages=2 stored_pages_max=46811 "
    "pool_total_size_max=95932416";

Marker marker(const std::string& line) {
  const std::optional<Marker> m = parse_marker(line);
  EXPECT_TRUE(m.has_value()) << line;
  return m.value_or(Marker{});
}

std::string error_of(const std::string& line) {
  try {
    GuestZswapSample::parse(marker(line));
  } catch (const LabError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GuestZswapSample, ReadsEveryDebugfsCounter) {
  const GuestZswapSample z = GuestZswapSample::parse(marker(kZswapLine));
  EXPECT_EQ(z.stored_pages, 46811u);
  EXPECT_EQ(z.pool_total_size, 95928320u);
  EXPECT_EQ(z.pool_total_size / 4096, 23420u);
  EXPECT_EQ(z.same_filled_pages, 2u);
  EXPECT_EQ(z.written_back_pages, 2u);
  EXPECT_EQ(z.pool_limit_hit, 576u);
  EXPECT_EQ(z.stored_pages_max, 46811u);
  EXPECT_EQ(z.pool_total_size_max, 95932416u);
  ASSERT_EQ(z.counters.size(), 12u);
  EXPECT_EQ(z.counters[0], (std::pair<std::string, std::uint64_t>{"duplicate_entry", 0}));
  EXPECT_EQ(z.counters[4].first, "reject_compress_poor");
}

TEST(GuestZswapSample, KernelTextInTheValueIsAnErrorNamingTheField) {
  std::string line = kZswapLine;
  line.replace(line.find("stored_pages=46811"), 18, "stored_pages=468[ 12.3] oom");
  const std::string e = error_of(line);
  EXPECT_NE(
      e.find("zswap marker at guest time 54.413 s: stored_pages='468[ 12.3] oom' is not a number"),
      std::string::npos)
      << e;
}

TEST(GuestZswapSample, MissingEmptyNegativeAndHugeValuesAreErrors) {
  std::string missing = kZswapLine;
  missing.erase(missing.find(" same_filled_pages=2"), 20);
  EXPECT_NE(error_of(missing).find("no same_filled_pages field"), std::string::npos)
      << error_of(missing);
  std::string empty = kZswapLine;
  empty.replace(empty.find("pool_limit_hit=576"), 18, "pool_limit_hit=");
  EXPECT_NE(error_of(empty).find("pool_limit_hit='' is not a number"), std::string::npos)
      << error_of(empty);
  std::string negative = kZswapLine;
  negative.replace(negative.find("written_back_pages=2"), 20, "written_back_pages=-2");
  EXPECT_NE(error_of(negative).find("written_back_pages='-2' is not a number"), std::string::npos);
  std::string huge = kZswapLine;
  huge.replace(huge.find("duplicate_entry=0"), 17, "duplicate_entry=99999999999999999999999");
  EXPECT_NE(error_of(huge).find("duplicate_entry='99999999999999999999999' is out of range"),
            std::string::npos)
      << error_of(huge);
  EXPECT_NE(error_of("@@memvirt 1.0 sys zswap").find("no stored_pages field"), std::string::npos);
}

TEST(GuestSwapCounters, ReadsPswpinAndPswpout) {
  const GuestSwapCounters c = GuestSwapCounters::parse(
      marker("@@memvirt 3.4 sys meminfo total=479645696 free=441409536 pswpin=20 pswpout=62166 "
             "majflt=5"));
  EXPECT_EQ(c.pswpin, 20u);
  EXPECT_EQ(c.pswpout, 62166u);
  try {
    GuestSwapCounters::parse(marker("@@memvirt 3.4 sys meminfo pswpin=1x pswpout=2"));
    FAIL() << "a garbled pswpin must be an error";
  } catch (const LabError& e) {
    EXPECT_NE(std::string(e.what()).find("meminfo marker at guest time 3.400 s: pswpin='1x'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(GuestSwapCounters::parse(marker("@@memvirt 3.4 sys meminfo pswpin=1")), LabError);
}

}  // namespace
}  // namespace memvirt
