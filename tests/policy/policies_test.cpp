// Each policy's rule against its reference formula (the sources are in each header), and the
// safety properties of memvirt's own controller.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "policy/controller.hpp"
#include "policy/dmc.hpp"
#include "policy/dynamic_memory.hpp"
#include "policy/ksmtuned.hpp"
#include "policy/mom.hpp"
#include "policy/partition.hpp"
#include "policy/senpai.hpp"

namespace memvirt {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::uint64_t kGiB = 1ULL << 30;

Bytes mib(double v) {
  return Bytes{static_cast<std::uint64_t>(v * kMiB)};
}
Bytes gib(double v) {
  return Bytes{static_cast<std::uint64_t>(v * kGiB)};
}
Bytes whole_pages(double bytes) {
  return Bytes::from_pages(static_cast<std::uint64_t>(bytes) / kPageSize);
}

GuestObservation guest(std::uint32_t key, Bytes memory, Bytes actual, Bytes min, Bytes max) {
  GuestObservation g;
  g.key = key;
  g.name = "vm" + std::to_string(key);
  g.memory = memory;
  g.actual = actual;
  g.target = actual;
  g.min = min;
  g.max = max;
  g.resident = actual;
  return g;
}

GuestMemoryStats stats(Bytes total, Bytes free, Bytes available) {
  GuestMemoryStats s;
  s.total = total;
  s.free = free;
  s.available = available;
  return s;
}

HostObservation host(Bytes total, Bytes free, std::vector<GuestObservation> guests) {
  HostObservation h;
  h.total = total;
  h.free = free;
  h.guests = std::move(guests);
  return h;
}

const PolicyActions::BalloonRequest* request_for(const PolicyActions& a, std::uint32_t key) {
  for (const auto& r : a.balloons) {
    if (r.guest == key) return &r;
  }
  return nullptr;
}

// MOM runs its rules every second sample (policy 10 s, monitor 5 s): two ticks of the same
// observation give one decision on averages equal to it.
PolicyActions mom_decision(Mom& mom, const HostObservation& h) {
  EXPECT_TRUE(mom.tick(h).empty());
  return mom.tick(h);
}

TEST(Mom, ShrinksEveryGuestByFivePercentWhenHostFreeIsBelowTwentyPercent) {
  Mom mom{MomConfig{}};
  GuestObservation g = guest(0, gib(2), gib(2), gib(0.25), gib(2));
  g.stats = stats(gib(2), gib(1), gib(1));  // used = 2 - 1 = 1 GiB
  // hf = 0.10: guest_free_percent = 0.20 x 0.10 / 0.20 = 0.10; floor = 1 + 0.1 x 2 = 1.2 GiB.
  const PolicyActions a = mom_decision(mom, host(gib(10), gib(1), {g}));
  ASSERT_EQ(a.balloons.size(), 1U);
  EXPECT_EQ(a.balloons[0].target, Bytes{static_cast<std::uint64_t>(2 * kGiB * 0.95)});
}

TEST(Mom, DoesNotShrinkBelowUsedPlusTheGuestsFreeShare) {
  Mom mom{MomConfig{}};
  GuestObservation g = guest(0, gib(2), gib(2), gib(0.25), gib(2));
  g.stats = stats(gib(2), mib(150), mib(150));  // used 1898 MiB: floor above the current size
  EXPECT_TRUE(mom_decision(mom, host(gib(10), gib(1), {g})).balloons.empty());
}

TEST(Mom, GrowsABalloonedGuestWhenTheHostHasMemory) {
  Mom mom{MomConfig{}};
  GuestObservation g = guest(0, gib(2), gib(1.5), gib(0.25), gib(2));
  g.stats = stats(gib(1.5), gib(1), gib(1));
  const PolicyActions a = mom_decision(mom, host(gib(10), gib(5), {g}));
  ASSERT_EQ(a.balloons.size(), 1U);
  EXPECT_EQ(a.balloons[0].target, Bytes{static_cast<std::uint64_t>(1.5 * kGiB * 1.05)});
}

TEST(Mom, AveragesTheLastSamples) {
  Mom mom{MomConfig{}};
  GuestObservation g = guest(0, gib(2), gib(2), gib(0.25), gib(2));
  g.stats = stats(gib(2), gib(1), gib(1));
  // 30% then 10% free: the average, 20%, is not below the threshold: no shrink.
  EXPECT_TRUE(mom.tick(host(gib(10), gib(3), {g})).empty());
  EXPECT_TRUE(mom.tick(host(gib(10), gib(1), {g})).balloons.empty());
}

TEST(Mom, KsmRulesStopWhenGuestsFitAndBoostWhenShort) {
  MomConfig cfg;
  cfg.balloon_rules = false;
  Mom fits{cfg};
  HostObservation h = host(gib(10), gib(6), {guest(0, gib(2), gib(2), gib(2), gib(2))});
  h.ksm = KsmObservation{true, 100, Duration::millis(20)};
  PolicyActions a = mom_decision(fits, h);
  ASSERT_TRUE(a.ksm);
  EXPECT_FALSE(a.ksm->run);

  Mom shortage{cfg};
  h.free = gib(1);  // below 20% of 10 GiB
  a = mom_decision(shortage, h);
  ASSERT_TRUE(a.ksm);
  EXPECT_TRUE(a.ksm->run);
  EXPECT_EQ(a.ksm->pages_to_scan, 400U);  // 100 + 300
  // sleep = 10 x 16 GiB / MemTotal in kB, integer milliseconds: 16 ms on 10 GiB.
  EXPECT_EQ(a.ksm->sleep, Duration::millis(16));
}

TEST(Ksmtuned, StopsWhenCommittedFitsAndStepsNpagesOtherwise) {
  Ksmtuned t{KsmtunedConfig{}};
  HostObservation h = host(gib(10), gib(5), {guest(0, gib(3), gib(3), gib(3), gib(3))});
  PolicyActions a = t.tick(h);  // 3 GiB + thres 2 GiB < 10 GiB and free 5 GiB > 2 GiB
  ASSERT_TRUE(a.ksm);
  EXPECT_FALSE(a.ksm->run);
  h.guests[0].resident = gib(9);  // committed + thres >= total
  a = t.tick(h);
  ASSERT_TRUE(a.ksm);
  EXPECT_TRUE(a.ksm->run);
  EXPECT_EQ(a.ksm->pages_to_scan, 64U);  // 0 - 50, raised to KSM_NPAGES_MIN
  EXPECT_EQ(a.ksm->sleep, Duration::millis(16));
  h.free = gib(1);
  EXPECT_EQ(t.tick(h).ksm->pages_to_scan, 364U);  // free < thres: +300
  for (int i = 0; i < 10; ++i) a = t.tick(h);
  EXPECT_EQ(a.ksm->pages_to_scan, 1250U);  // KSM_NPAGES_MAX
}

TEST(Dmc, GivesEveryGuestTheSameShareOfItsRange) {
  Dmc dmc{DmcConfig{}};
  // free 9 MiB + 8 KiB and guest 0 may give 2 GiB - 8 KiB: surplus 2 GiB of a 4 GiB range.
  HostObservation h =
      host(gib(8), mib(9) + Bytes{8 << 10},
           {guest(0, gib(3), gib(3), gib(1), gib(3)), guest(1, gib(3), gib(1), gib(1), gib(3))});
  EXPECT_DOUBLE_EQ(dmc.share(h), 0.5);
  PolicyActions a = dmc.tick(h);
  // Freeing first: only guest 0's decrease is set.
  ASSERT_EQ(a.balloons.size(), 1U);
  EXPECT_EQ(a.balloons[0].guest, 0U);
  EXPECT_EQ(a.balloons[0].target, gib(2));
  // Guest 0 reached its target: the host holds the gigabyte it freed, and guest 1 grows.
  h.guests[0].actual = h.guests[0].target = gib(2);
  h.free = h.free + gib(1);
  a = dmc.tick(h);
  ASSERT_EQ(a.balloons.size(), 1U);
  EXPECT_EQ(a.balloons[0].guest, 1U);
  EXPECT_EQ(a.balloons[0].target, gib(2));
}

TEST(Dmc, ShareIsClampedToTheRange) {
  Dmc dmc{DmcConfig{}};
  EXPECT_DOUBLE_EQ(dmc.share(host(gib(64), gib(60), {guest(0, gib(4), gib(1), gib(1), gib(4))})),
                   1);
  EXPECT_DOUBLE_EQ(dmc.share(host(gib(4), Bytes{0}, {guest(0, gib(4), gib(1), gib(1), gib(4))})),
                   0);
}

TEST(DynamicMemory, KeepsTheBufferAboveCommittedMemory) {
  DynamicMemory dm{DynamicMemoryConfig{}};
  GuestObservation g = guest(0, gib(4), gib(4), gib(0.5), gib(4));
  g.committed = gib(1);
  PolicyActions a = dm.tick(host(gib(16), gib(8), {g}));
  ASSERT_EQ(a.balloons.size(), 1U);
  EXPECT_EQ(a.balloons[0].target, whole_pages(1.2 * kGiB));
  g.committed = gib(0.1);  // the buffer would go below the minimum
  EXPECT_EQ(dm.tick(host(gib(16), gib(8), {g})).balloons[0].target, gib(0.5));
}

TEST(DynamicMemory, GrowthIsLimitedToWhatTheHostHas) {
  DynamicMemory dm{DynamicMemoryConfig{}};
  GuestObservation a = guest(0, gib(4), gib(1), gib(0.5), gib(4));
  GuestObservation b = guest(1, gib(4), gib(1), gib(0.5), gib(4));
  a.committed = b.committed = gib(2.5);  // each wants 3 GiB: 2 GiB more, 4 GiB together
  const PolicyActions out = dm.tick(host(gib(8), gib(1), {a, b}));
  ASSERT_EQ(out.balloons.size(), 2U);
  for (const auto& r : out.balloons) EXPECT_EQ(r.target, gib(1.5));  // half of the 1 GiB each
}

TEST(Senpai, ProbesOnePercentAfterTheIntervalAndBacksOffQuadratically) {
  Senpai senpai{SenpaiConfig{}};
  GuestObservation g = guest(0, gib(2), gib(2), gib(0.25), gib(2));
  g.memory_stall = Duration{0};
  const auto h = [&] { return host(gib(8), gib(4), {g}); };
  EXPECT_TRUE(senpai.tick(h()).empty());  // the guest is registered
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(senpai.tick(h()).empty()) << i;  // grace ticks
  PolicyActions a = senpai.tick(h());
  ASSERT_EQ(a.balloons.size(), 1U);
  EXPECT_EQ(a.balloons[0].target, whole_pages(2.0 * kGiB * 0.99));
  g.target = a.balloons[0].target;
  // 40 ms of stall: err = 4, adj = (4 / 20)^2 = 4% at once.
  g.memory_stall = Duration::millis(40);
  a = senpai.tick(h());
  ASSERT_EQ(a.balloons.size(), 1U);
  EXPECT_EQ(a.balloons[0].target, whole_pages(static_cast<double>(g.target.value()) * 1.04));
}

TEST(Senpai, ALimitChangedBySomeoneElseStartsAgainFromTheGuestsSize) {
  Senpai senpai{SenpaiConfig{}};
  GuestObservation g = guest(0, gib(2), gib(2), gib(0.25), gib(2));
  g.memory_stall = Duration{0};
  senpai.tick(host(gib(8), gib(4), {g}));
  g.target = gib(1);    // the operator set it
  g.actual = gib(1.5);  // on its way
  g.memory_stall = Duration::millis(40);
  const PolicyActions a = senpai.tick(host(gib(8), gib(4), {g}));
  // scale_limit() computes the back-off, then import_limit() finds memory.high changed and
  // sets memory.current instead: the adjustment is lost, the limit is the guest's size.
  ASSERT_EQ(a.balloons.size(), 1U);
  EXPECT_EQ(a.balloons[0].target, gib(1.5));
}

TEST(Partition, AdmitsOnlyWhatFitsWithoutOvercommit) {
  Partition p{PartitionConfig{}};
  const HostObservation h =
      host(gib(4), gib(3),
           {guest(0, gib(1), gib(1), gib(1), gib(1)), guest(1, gib(1), gib(1), gib(1), gib(1))});
  EXPECT_TRUE(p.admits(h, gib(2)));
  EXPECT_FALSE(p.admits(h, gib(2) + Bytes{kPageSize}));
}

TEST(ClampActions, KeepsRequestsInBoundsAndDropsGoneGuests) {
  HostObservation h = host(gib(8), gib(4), {guest(0, gib(2), gib(2), gib(1), gib(2))});
  PolicyActions a;
  a.balloons = {{0, mib(100), "low"},
                {0, gib(3), "high"},
                {7, gib(1), "gone"},
                {0, Bytes{gib(1.5).value() + 5}, "unaligned"}};
  EXPECT_EQ(clamp_actions(h, a), 4U);
  ASSERT_EQ(a.balloons.size(), 3U);
  EXPECT_EQ(a.balloons[0].target, gib(1));
  EXPECT_EQ(a.balloons[1].target, gib(2));
  EXPECT_EQ(a.balloons[2].target, gib(1.5));
}

// memvirt's controller.
GuestObservation controlled(Bytes actual, Bytes available) {
  GuestObservation g = guest(0, gib(2), actual, mib(256), gib(2));
  g.stats = stats(actual, available, available);
  g.memory_stall = Duration{0};
  return g;
}

TEST(Controller, ShrinksSlowlyIntoTheCacheAndStopsAtUsedPlusReserve) {
  Controller c{ControllerConfig{}};
  GuestObservation g = controlled(gib(2), gib(1.5));  // used 512 MiB, the rest page cache
  g.stats->free = mib(32);
  Bytes last = g.target;
  unsigned shrinks = 0;
  for (int t = 1; t <= 400; ++t) {
    HostObservation h = host(gib(16), gib(8), {g});
    h.since_start = Duration::seconds(t);
    const PolicyActions a = c.tick(h);
    if (const auto* r = request_for(a, 0)) {
      EXPECT_GT(t, 5) << "shrank before settling";
      EXPECT_LT(r->target, last);
      // At most 1% of its size per tick.
      EXPECT_GE(static_cast<double>(r->target.value()),
                0.99 * static_cast<double>(last.value()) - kPageSize);
      last = r->target;
      ++shrinks;
      g.actual = g.target = r->target;
      g.stats = stats(g.actual, mib(32), g.actual - mib(512));
    }
  }
  EXPECT_GT(shrinks, 10U);
  // used 512 MiB + reserve max(64 MiB, 5% of 2 GiB = 102.4 MiB).
  EXPECT_EQ(last, whole_pages(512.0 * kMiB + 0.05 * 2 * kGiB));
}

TEST(Controller, GivesFreeMemoryBackInOneRequest) {
  Controller c{ControllerConfig{}};
  GuestObservation g = controlled(gib(2), gib(1.5));
  g.stats->free = gib(1);  // 1 GiB free, 512 MiB cache, 512 MiB used
  HostObservation h = host(gib(16), gib(8), {g});
  for (int t = 1; t <= 6; ++t) {
    h.since_start = Duration::seconds(t);
    const PolicyActions a = c.tick(h);
    if (t <= 5) {
      EXPECT_EQ(request_for(a, 0), nullptr) << "shrank before settling";
      continue;
    }
    const auto* r = request_for(a, 0);
    ASSERT_NE(r, nullptr);
    // Everything but the free memory and above the reserve: 1 GiB + 102.4 MiB.
    EXPECT_EQ(r->target, whole_pages(1.0 * kGiB + 0.05 * 2 * kGiB));
  }
}

// With deflate-on-oom the guest's MemTotal keeps the balloon's pages (virtio_balloon takes
// them out of the managed count only without it): they are not what the guest uses.
TEST(Controller, PagesOfABalloonThatMemTotalStillCountsAreNotUsed) {
  Controller c{ControllerConfig{}};
  // Ballooned to 1 GiB of its 2 GiB: MemTotal 2 GiB, 600 MiB free and available (the
  // balloon's 1 GiB is neither), so it uses 424 MiB.
  GuestObservation g = guest(0, gib(2), gib(1), mib(256), gib(2));
  g.stats = stats(gib(2), mib(600), mib(600));
  g.memory_stall = Duration{0};
  HostObservation h = host(gib(16), gib(8), {g});
  for (int t = 1; t <= 6; ++t) {
    h.since_start = Duration::seconds(t);
    const PolicyActions a = c.tick(h);
    if (t <= 5) continue;
    const auto* r = request_for(a, 0);
    ASSERT_NE(r, nullptr) << "took the balloon's pages for used memory";
    // Its free memory goes back: 424 MiB used + 102.4 MiB reserve.
    EXPECT_EQ(r->target, whole_pages(424.0 * kMiB + 0.05 * 2 * kGiB));
  }
}

// A 2 GiB guest that uses 1.5 GiB until tick 10, then 256 MiB with the rest free, under
// memvirt's controller with a 100 s peak window on a 16 GiB host with `host_free`: each
// tick's target, the last one set after `ticks`.
struct PeakRun {
  std::map<int, Bytes> requests;  // tick -> target asked
  Bytes last;
};
PeakRun run_past_a_peak(Bytes host_free, int ticks) {
  ControllerConfig cfg;
  cfg.peak_window = Duration::seconds(100);
  Controller c{cfg};
  GuestObservation g = controlled(gib(2), mib(512));
  g.stats->free = mib(512);
  PeakRun out;
  for (int t = 1; t <= ticks; ++t) {
    if (t == 11) g.stats = stats(gib(2), gib(1.75), gib(1.75));
    HostObservation h = host(gib(16), host_free, {g});
    h.since_start = Duration::seconds(t);
    const PolicyActions a = c.tick(h);
    if (const auto* r = request_for(a, 0)) {
      out.requests[t] = r->target;
      g.actual = g.target = r->target;
      const Bytes used = t <= 10 ? gib(1.5) : mib(256);
      g.stats = stats(g.actual, g.actual - used, g.actual - used);
    }
  }
  out.last = g.target;
  return out;
}

TEST(Controller, KeepsTheLargestDemandForItsWindowThenGivesItBack) {
  const PeakRun run = run_past_a_peak(gib(8), 300);
  // Used 1.5 GiB up to tick 10, when it was last reached: held until tick 110.
  const Bytes at_peak = whole_pages(1.5 * kGiB + 0.05 * 2 * kGiB);
  for (const auto& [t, target] : run.requests) {
    if (t < 110) {
      EXPECT_GE(target, at_peak) << "below the peak at tick " << t;
    }
  }
  EXPECT_TRUE(run.requests.upper_bound(110) != run.requests.end()) << "never gave it back";
  EXPECT_EQ(run.last, whole_pages(256.0 * kMiB + 0.05 * 2 * kGiB));
}

TEST(Controller, AHostShortOfMemoryDoesNotWaitForThePeaksWindow) {
  // 1 GiB free of 16: below host_low's 10%.
  const PeakRun run = run_past_a_peak(gib(1), 40);
  EXPECT_EQ(run.last, whole_pages(256.0 * kMiB + 0.05 * 2 * kGiB));
}

TEST(Controller, GrowsAtOnceUnderPressureAndHoldsTheFloor) {
  Controller c{ControllerConfig{}};
  GuestObservation g = controlled(gib(1), mib(600));
  HostObservation h = host(gib(16), gib(8), {g});
  h.since_start = Duration::seconds(1);
  c.tick(h);
  h.guests[0].memory_stall = Duration::millis(50);  // 5% of the tick
  h.since_start = Duration::seconds(2);
  const PolicyActions a = c.tick(h);
  const auto* r = request_for(a, 0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->target, whole_pages(1.0 * kGiB + 0.1 * 2 * kGiB));
  // Calm again with plenty available: it does not shrink below where it hurt within `hold`.
  h.guests[0].actual = h.guests[0].target = r->target;
  for (int t = 3; t < 60; ++t) {
    h.since_start = Duration::seconds(t);
    const PolicyActions b = c.tick(h);
    if (const auto* s = request_for(b, 0)) {
      EXPECT_GE(s->target, gib(1));
    }
  }
}

TEST(Controller, SwappingCountsAsPressure) {
  Controller c{ControllerConfig{}};
  GuestObservation g = controlled(gib(1), mib(100));
  g.memory_stall.reset();  // no agent: the stats queue alone
  HostObservation h = host(gib(16), gib(8), {g});
  c.tick(h);
  h.guests[0].stats->swap_in_bytes = 1 << 20;
  EXPECT_NE(request_for(c.tick(h), 0), nullptr);
}

TEST(Controller, ABalloonDeflatedOnOomCountsAsPressure) {
  Controller c{ControllerConfig{}};
  GuestObservation g = controlled(gib(1), mib(600));
  g.target = gib(1);
  HostObservation h = host(gib(16), gib(8), {g});
  h.since_start = Duration::seconds(1);
  EXPECT_EQ(request_for(c.tick(h), 0), nullptr);
  // The guest took 8 MiB back from the balloon on OOM; nothing else shows pressure.
  h.guests[0].actual = gib(1) + mib(8);
  h.since_start = Duration::seconds(2);
  const PolicyActions a = c.tick(h);
  const auto* r = request_for(a, 0);
  ASSERT_NE(r, nullptr);
  EXPECT_GT(r->target, h.guests[0].actual);
  EXPECT_NE(r->reason.find("deflated on OOM"), std::string::npos);
  EXPECT_TRUE(c.needs().deflate_on_oom);
}

TEST(Controller, RunsKsmOnlyWhileTheHostIsShort) {
  Controller c{ControllerConfig{}};
  HostObservation h = host(gib(16), gib(2), {});  // 12.5% free: short
  h.ksm = KsmObservation{false, 100, Duration::millis(20)};
  PolicyActions a = c.tick(h);
  ASSERT_TRUE(a.ksm);
  EXPECT_TRUE(a.ksm->run);
  EXPECT_EQ(a.ksm->pages_to_scan, 300U);  // 0 + 300
  h.ksm->run = true;
  h.ksm->pages_to_scan = 300;
  h.free = gib(8);
  std::vector<std::uint64_t> steps;
  for (int t = 0; t < 10 && h.ksm->run; ++t) {
    a = c.tick(h);
    ASSERT_TRUE(a.ksm);
    h.ksm->run = a.ksm->run;
    h.ksm->pages_to_scan = a.ksm->pages_to_scan;
    steps.push_back(a.ksm->run ? a.ksm->pages_to_scan : 0);
  }
  EXPECT_EQ(steps, (std::vector<std::uint64_t>{250, 200, 150, 100, 64, 0}));
  EXPECT_FALSE(c.tick(h).ksm);  // stopped and not short: nothing to change
}

RC_GTEST_PROP(Controller, TargetsStayInBounds, ()) {
  Controller c{ControllerConfig{}};
  const auto memory = gib(*rc::gen::inRange(1, 8));
  const Bytes min = Bytes::from_pages(*rc::gen::inRange<std::uint64_t>(0, memory.pages()));
  GuestObservation g = guest(0, memory, memory, min, memory);
  Duration stall;
  std::uint64_t swap_in = 0;
  const int ticks = *rc::gen::inRange(1, 300);
  for (int t = 1; t <= ticks; ++t) {
    stall += Duration::millis(*rc::gen::element<std::int64_t>(0, 0, 0, 5, 50, 500));
    swap_in += *rc::gen::element<std::uint64_t>(0, 0, 0, 4096);
    const Bytes available =
        Bytes::from_pages(*rc::gen::inRange<std::uint64_t>(0, g.actual.pages() + 1));
    g.stats = stats(g.actual, available, available);
    g.stats->swap_in_bytes = swap_in;
    g.memory_stall = stall;
    HostObservation h = host(gib(16), gib(*rc::gen::inRange(0, 16)), {g});
    h.since_start = Duration::seconds(t);
    for (const auto& r : c.tick(h).balloons) {
      RC_ASSERT(r.target >= min);
      RC_ASSERT(r.target <= memory);
      RC_ASSERT(r.target.value() % kPageSize == 0);
      g.target = r.target;
      // The balloon moves part of the way.
      g.actual = *rc::gen::element(g.actual, r.target);
    }
  }
}

}  // namespace
}  // namespace memvirt
