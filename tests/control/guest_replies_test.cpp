// The parsers of QEMU's replies about a guest's memory: values that make sense are read
// exactly; every reply that does not is an error naming the VM, the command and the field.
#include "control/guest_replies.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace memvirt {
namespace {

using nlohmann::json;
constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::uint64_t kGiB = 1ULL << 30;
constexpr std::int64_t kNow = 1'700'000'000;

json stats_reply(std::int64_t last_update) {
  return {{"stats",
           {{"stat-swap-in", 4096},
            {"stat-swap-out", 8192},
            {"stat-major-faults", 12},
            {"stat-minor-faults", 3400},
            {"stat-free-memory", 512 * kMiB},
            {"stat-total-memory", 1900 * kMiB},
            {"stat-available-memory", 1200 * kMiB},
            {"stat-disk-caches", 600 * kMiB},
            {"stat-htlb-pgalloc", 0},
            {"stat-htlb-pgfail", 0}}},
          {"last-update", last_update}};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const GuestReplyError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GuestReplies, MemorySummaryAddsPluggedMemory) {
  EXPECT_EQ(parse_memory_size_summary("vm1", {{"base-memory", 2 * kGiB}}), Bytes{2 * kGiB});
  EXPECT_EQ(
      parse_memory_size_summary("vm1", {{"base-memory", 2 * kGiB}, {"plugged-memory", 512 * kMiB}}),
      Bytes{2 * kGiB + 512 * kMiB});
}

TEST(GuestReplies, MemorySummaryErrorsNameTheField) {
  EXPECT_EQ(error_of([] { parse_memory_size_summary("vm1", json::object()); }),
            "vm1: query-memory-size-summary: base-memory: missing");
  EXPECT_EQ(error_of([] {
              parse_memory_size_summary("vm1", {{"base-memory", "2G"}});
            }),
            "vm1: query-memory-size-summary: base-memory: not an integer: \"2G\"");
  EXPECT_EQ(error_of([] {
              parse_memory_size_summary("vm1", {{"base-memory", 0}});
            }),
            "vm1: query-memory-size-summary: base-memory: is not positive (0)");
  EXPECT_EQ(error_of([] {
              parse_memory_size_summary("vm1", {{"base-memory", kGiB}, {"plugged-memory", -1}});
            }),
            "vm1: query-memory-size-summary: plugged-memory: is negative (-1)");
  EXPECT_EQ(error_of([] { parse_memory_size_summary("vm1", json::array({1})); }),
            "vm1: query-memory-size-summary: expected an object, got [1]");
}

TEST(GuestReplies, BalloonActualMustBeASizeTheGuestCanHave) {
  const Bytes memory{2 * kGiB};
  EXPECT_EQ(parse_query_balloon("vm2", {{"actual", 1536 * kMiB}}, memory), Bytes{1536 * kMiB});
  EXPECT_EQ(parse_query_balloon("vm2", {{"actual", 2 * kGiB}}, memory), memory);
  EXPECT_EQ(error_of([&] { parse_query_balloon("vm2", json::object(), memory); }),
            "vm2: query-balloon: actual: missing");
  EXPECT_EQ(error_of([&] {
              parse_query_balloon("vm2", {{"actual", -4096}}, memory);
            }),
            "vm2: query-balloon: actual: is negative (-4096)");
  EXPECT_EQ(error_of([&] {
              parse_query_balloon("vm2", {{"actual", 1.5e9}}, memory);
            }),
            "vm2: query-balloon: actual: not an integer: 1500000000.0");
  EXPECT_EQ(error_of([&] {
              parse_query_balloon("vm2", {{"actual", true}}, memory);
            }),
            "vm2: query-balloon: actual: not an integer: true");
  EXPECT_EQ(error_of([&] {
              parse_query_balloon("vm2", {{"actual", 0}}, memory);
            }),
            "vm2: query-balloon: actual: is 0: a running guest has memory");
  EXPECT_EQ(error_of([&] {
              parse_query_balloon("vm2", {{"actual", 3 * kGiB}}, memory);
            }),
            "vm2: query-balloon: actual: 3.00 GiB is more than the guest's memory, 2.00 GiB");
  EXPECT_EQ(error_of([&] { parse_query_balloon("vm2", "1G", memory); }),
            "vm2: query-balloon: expected an object, got \"1G\"");
}

TEST(GuestReplies, StatsAreReadInBytesWithTheirAge) {
  const GuestStatsReading r =
      parse_guest_stats("vm3", stats_reply(kNow - 4), Bytes{2 * kGiB}, kNow);
  ASSERT_TRUE(r.stats.has_value());
  EXPECT_TRUE(r.unreported.empty());
  const GuestMemoryStats& s = *r.stats;
  EXPECT_EQ(s.age, Duration::seconds(4));
  EXPECT_EQ(s.total, Bytes{1900 * kMiB});
  EXPECT_EQ(s.free, Bytes{512 * kMiB});
  EXPECT_EQ(s.available, Bytes{1200 * kMiB});
  EXPECT_EQ(s.caches, Bytes{600 * kMiB});
  EXPECT_EQ(s.swap_in_bytes, 4096U);
  EXPECT_EQ(s.swap_out_bytes, 8192U);
  EXPECT_EQ(s.major_faults, 12U);
  EXPECT_EQ(s.minor_faults, 3400U);
}

TEST(GuestReplies, NoReportYetIsNoStatsAndNoError) {
  json j = stats_reply(0);
  for (auto& [k, v] : j["stats"].items()) v = -1;
  const GuestStatsReading r = parse_guest_stats("vm3", j, Bytes{2 * kGiB}, kNow);
  EXPECT_FALSE(r.stats.has_value());
  EXPECT_TRUE(r.unreported.empty());
}

// -1 from older QEMU, 2^64 - 1 from QEMU 7.2 (unsigned statistics): both are "not reported".
TEST(GuestReplies, UnreportedCountersReadAsZeroAndAreNamed) {
  json j = stats_reply(kNow);
  j["stats"]["stat-swap-in"] = -1;
  j["stats"]["stat-disk-caches"] = std::numeric_limits<std::uint64_t>::max();
  const GuestStatsReading r = parse_guest_stats("vm3", j, Bytes{2 * kGiB}, kNow);
  ASSERT_TRUE(r.stats.has_value());
  EXPECT_EQ(r.stats->swap_in_bytes, 0U);
  EXPECT_EQ(r.stats->caches, Bytes{0});
  EXPECT_EQ(r.unreported, (std::vector<std::string>{"stat-swap-in", "stat-disk-caches"}));
}

TEST(GuestReplies, AReportWithoutAvailableMemoryGivesNoStats) {
  json j = stats_reply(kNow);
  j["stats"]["stat-available-memory"] = std::numeric_limits<std::uint64_t>::max();
  const GuestStatsReading r = parse_guest_stats("vm3", j, Bytes{2 * kGiB}, kNow);
  EXPECT_FALSE(r.stats.has_value());
  EXPECT_EQ(r.unreported, std::vector<std::string>{"stat-available-memory"});
}

TEST(GuestReplies, StatsThatMakeNoSenseNameTheField) {
  const Bytes memory{2 * kGiB};
  auto with = [](const char* stat, json v) {
    json j = stats_reply(kNow);
    j["stats"][stat] = std::move(v);
    return j;
  };
  auto err = [&](const json& j) {
    return error_of([&] { parse_guest_stats("vm4", j, memory, kNow); });
  };
  EXPECT_EQ(err(with("stat-free-memory", "lots")),
            "vm4: qom-get guest-stats: stats.stat-free-memory: not an integer: \"lots\"");
  EXPECT_EQ(err(with("stat-major-faults", -7)),
            "vm4: qom-get guest-stats: stats.stat-major-faults: is negative (-7)");
  EXPECT_EQ(err(with("stat-total-memory", 3 * kGiB)),
            "vm4: qom-get guest-stats: stats.stat-total-memory: 3.00 GiB is more than the guest's "
            "memory, 2.00 GiB");
  EXPECT_EQ(err(with("stat-available-memory", 1950 * kMiB)),
            "vm4: qom-get guest-stats: stats.stat-available-memory: 1.90 GiB is more than "
            "stat-total-memory, 1.86 GiB");
  json missing = stats_reply(kNow);
  missing["stats"].erase("stat-swap-out");
  EXPECT_EQ(err(missing), "vm4: qom-get guest-stats: stats.stat-swap-out: missing");
  json no_stats = stats_reply(kNow);
  no_stats.erase("stats");
  EXPECT_EQ(err(no_stats), "vm4: qom-get guest-stats: stats: missing");
  json not_object = stats_reply(kNow);
  not_object["stats"] = json::array();
  EXPECT_EQ(err(not_object), "vm4: qom-get guest-stats: stats: expected an object, got []");
  json no_time = stats_reply(kNow);
  no_time.erase("last-update");
  EXPECT_EQ(err(no_time), "vm4: qom-get guest-stats: last-update: missing");
  EXPECT_EQ(err(stats_reply(kNow + 100)),
            "vm4: qom-get guest-stats: last-update: 1700000100 is in the future (now 1700000000, "
            "100 s ahead)");
  EXPECT_EQ(err(stats_reply(-3)), "vm4: qom-get guest-stats: last-update: is negative (-3)");
}

TEST(GuestReplies, PollingInterval) {
  EXPECT_EQ(parse_polling_interval("vm5", 0), 0);
  EXPECT_EQ(parse_polling_interval("vm5", 2), 2);
  EXPECT_EQ(error_of([] { parse_polling_interval("vm5", "2"); }),
            "vm5: qom-get guest-stats-polling-interval: value: not an integer: \"2\"");
  EXPECT_EQ(error_of([] { parse_polling_interval("vm5", -2); }),
            "vm5: qom-get guest-stats-polling-interval: value: is negative (-2)");
}

TEST(GuestReplies, DeflateOnOom) {
  EXPECT_TRUE(parse_deflate_on_oom("vm5", true));
  EXPECT_FALSE(parse_deflate_on_oom("vm5", false));
  EXPECT_EQ(error_of([] { parse_deflate_on_oom("vm5", "on"); }),
            "vm5: qom-get deflate-on-oom: value: not a boolean: \"on\"");
}

}  // namespace
}  // namespace memvirt
