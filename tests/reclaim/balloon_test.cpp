#include "reclaim/balloon.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "core/error.hpp"
#include "reclaim/mechanism_rig.hpp"
#include "reclaim/random_program.hpp"

namespace memvirt {
namespace {

using testing::Rig;
using testing::touch_and_exit;

TEST(Balloon, InflatesInArraysOf256AndTheHostDiscardsEachPage) {
  Rig r(Bytes{256ULL << 20});
  Balloon& b = r.add<Balloon>(BalloonConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  touch_and_exit(k, Bytes{200ULL << 20});
  const std::uint64_t host_before = r.f.host.frames_used();
  const std::uint64_t guest_free = k.free_pages() + k.pcp_pages();
  b.set_target(r.f.vm, 16384);  // 64 MiB
  r.run_until(10);
  EXPECT_EQ(b.actual_pages(r.f.vm), 16384U);
  EXPECT_EQ(b.stats().inflate_requests.value(), 16384U / 256);
  EXPECT_EQ(k.free_pages() + k.pcp_pages(), guest_free - 16384);
  // Balloon pages came from guest free memory, most of it backed: the host lost frames.
  EXPECT_LT(r.f.host.frames_used(), host_before);
  EXPECT_GE(host_before - r.f.host.frames_used(), 16384U * 3 / 4);
  EXPECT_GT(r.accounts.get("qemu_discard").busy().ps, 0U);
  k.check(true);
  r.f.host.check_full();
}

TEST(Balloon, DeflateGivesPagesBackAndTheGuestFaultsThemInAgain) {
  Rig r(Bytes{256ULL << 20});
  Balloon& b = r.add<Balloon>(BalloonConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  const std::uint64_t free_at_start = k.free_pages() + k.pcp_pages();
  b.set_target(r.f.vm, 40000);
  r.run_until(10);
  EXPECT_EQ(b.actual_pages(r.f.vm), 40000U);
  b.set_target(r.f.vm, 0);
  r.run_until(20);
  EXPECT_EQ(b.actual_pages(r.f.vm), 0U);
  EXPECT_EQ(b.stats().pages_deflated.value(), 40000U);
  for (auto& z : k.zones()) z->drain_pcp();
  EXPECT_EQ(k.free_pages(), free_at_start);
  const std::uint64_t faults = r.f.host.vm_stats(r.f.vm).faults_in.value();
  touch_and_exit(k, Bytes{200ULL << 20});
  EXPECT_EQ(r.f.host.vm_stats(r.f.vm).faults_in.value() - faults, Bytes{200ULL << 20}.pages());
  k.check(true);
}

TEST(Balloon, OutOfPuffRetriesEvery200ms) {
  Rig r(Bytes{64ULL << 20});
  Balloon& b = r.add<Balloon>(BalloonConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  b.set_target(r.f.vm, k.total_pages());  // more than the guest can give
  r.run_until(2);
  const std::uint64_t held = b.actual_pages(r.f.vm);
  EXPECT_LT(held, k.total_pages());
  EXPECT_GT(held, k.total_pages() * 9 / 10);
  const std::uint64_t failures = b.stats().alloc_failures.value();
  r.run_until(3);
  // One failed attempt per 200 ms of sleep.
  EXPECT_NEAR(static_cast<double>(b.stats().alloc_failures.value() - failures), 5.0, 1.0);
  EXPECT_EQ(k.stats().oom_kills.value(), 0U);  // the balloon never wakes the OOM killer
}

TEST(Balloon, DeflateOnOomSparesTheProcess) {
  for (const bool deflate_on_oom : {false, true}) {
    Rig r(Bytes{128ULL << 20});
    BalloonConfig c;
    c.deflate_on_oom = deflate_on_oom;
    Balloon& b = r.add<Balloon>(c);
    r.start();
    GuestKernel& k = *r.f.kernel;
    b.set_target(r.f.vm, Bytes{96ULL << 20}.pages());
    r.run_until(5);
    ASSERT_EQ(b.actual_pages(r.f.vm), Bytes{96ULL << 20}.pages());
    const auto pid = k.spawn("app");
    const auto region = k.mmap(pid, Bytes{64ULL << 20});
    const TouchResult t = k.touch(pid, region, Bytes{64ULL << 20}.pages(),
                                  [](std::uint64_t i) { return make_fingerprint(i + 3); });
    if (deflate_on_oom) {
      EXPECT_EQ(t.status, TouchStatus::kDone);
      EXPECT_EQ(k.stats().oom_kills.value(), 0U);
      EXPECT_GT(b.stats().oom_deflations.value(), 0U);
      EXPECT_LT(b.actual_pages(r.f.vm), Bytes{96ULL << 20}.pages());
      for (std::uint64_t i = 0; i < Bytes{64ULL << 20}.pages(); i += 97)
        ASSERT_EQ(k.read(pid, region, i), make_fingerprint(i + 3));
    } else {
      EXPECT_EQ(t.status, TouchStatus::kKilled);
      EXPECT_EQ(k.stats().oom_kills.value(), 1U);
      EXPECT_EQ(b.actual_pages(r.f.vm), Bytes{96ULL << 20}.pages());
    }
    k.check(true);
  }
}

TEST(Balloon, StatsQueueReportsTheGuestsCounters) {
  Rig r(Bytes{256ULL << 20});
  BalloonConfig c;
  c.stats_interval = Duration::seconds(5);
  Balloon& b = r.add<Balloon>(c);
  r.start();
  GuestKernel& k = *r.f.kernel;
  EXPECT_EQ(b.last_stats(r.f.vm), nullptr);
  touch_and_exit(k, Bytes{32ULL << 20});
  r.run_until(11);
  EXPECT_EQ(b.stats().stats_requests.value(), 2U);
  const BalloonStatsReport* s = b.last_stats(r.f.vm);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->at, TimePoint{} + Duration::seconds(10));
  EXPECT_EQ(s->get(BalloonStatTag::kMemTotal), 256ULL << 20);
  EXPECT_EQ(s->get(BalloonStatTag::kMemFree), (k.free_pages() + k.pcp_pages()) * kPageSize);
  EXPECT_LT(s->get(BalloonStatTag::kAvailable), s->get(BalloonStatTag::kMemFree));
  EXPECT_EQ(s->get(BalloonStatTag::kMinorFaults), Bytes{32ULL << 20}.pages());
}

// si_meminfo()'s totalram in the report: fill_balloon() takes each page out of the managed
// count only when the guest may not deflate on OOM.
TEST(Balloon, MemTotalLosesTheBalloonsPagesOnlyWithoutDeflateOnOom) {
  for (const bool deflate_on_oom : {false, true}) {
    Rig r(Bytes{256ULL << 20});
    BalloonConfig c;
    c.stats_interval = Duration::seconds(5);
    c.deflate_on_oom = deflate_on_oom;
    Balloon& b = r.add<Balloon>(c);
    r.start();
    b.set_target(r.f.vm, Bytes{64ULL << 20}.pages());
    r.run_until(11);
    ASSERT_EQ(b.actual_pages(r.f.vm), Bytes{64ULL << 20}.pages());
    const BalloonStatsReport* s = b.last_stats(r.f.vm);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->get(BalloonStatTag::kMemTotal), (deflate_on_oom ? 256ULL : 192ULL) << 20)
        << "deflate_on_oom " << deflate_on_oom;
  }
}

TEST(Balloon, ScenarioTargetsApplyAtTheirTimes) {
  Rig r(Bytes{256ULL << 20});
  BalloonConfig c;
  c.targets = {{Duration::seconds(10), Bytes{64ULL << 20}}, {Duration::seconds(30), Bytes{}}};
  Balloon& b = r.add<Balloon>(c);
  r.start();
  r.run_until(9);
  EXPECT_EQ(b.actual_pages(r.f.vm), 0U);
  r.run_until(20);
  EXPECT_EQ(b.actual_pages(r.f.vm), Bytes{64ULL << 20}.pages());
  r.run_until(40);
  EXPECT_EQ(b.actual_pages(r.f.vm), 0U);
}

TEST(Balloon, BadParametersNameTheirField) {
  auto parse = [](const std::string& text) {
    auto ctx = std::make_shared<ParamContext>("s.yaml");
    Params p(YAML::Load(text), "reclaim.0", ctx);
    return Balloon::config_from(p);
  };
  EXPECT_EQ(parse("{targets: [{at: 1min, size: 1GiB}]}").targets.size(), 1U);
  EXPECT_THROW(parse("{targets: [{at: 1min}]}"), InputError);
  EXPECT_THROW(parse("{targets: [{at: 2min, size: 1GiB}, {at: 1min, size: 0B}]}"), InputError);
  EXPECT_THROW(parse("{deflate_on_oom: maybe}"), InputError);
  EXPECT_THROW(parse("{stats_interval: -1s}"), InputError);
  try {
    parse("{targets: [{at: 1min}]}");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("targets[0]: missing required key 'size'"),
              std::string::npos)
        << e.what();
  }
}

// Random programs while the host moves the balloon: every page a program owns reads back
// what it last wrote; guest and host books balance.
RC_GTEST_PROP(Balloon, GuestReadsBackWhatItWroteWhileTheBalloonMoves, ()) {
  Rig r(Bytes{24ULL << 20});
  BalloonConfig c;
  c.deflate_on_oom = *rc::gen::arbitrary<bool>();
  Balloon& b = r.add<Balloon>(c);
  r.start();
  GuestKernel& k = *r.f.kernel;
  // No RSS cap: with the balloon holding memory the OOM killer may end the program.
  testing::RandomProgram program(k, UINT64_MAX);
  double t = 0;
  const int steps = *rc::gen::inRange(1, 40);
  for (int s = 0; s < steps && program.alive(); ++s) {
    switch (*rc::gen::inRange(0, 5)) {
      case 0:
        program.map_and_touch();
        break;
      case 1:
        program.unmap();
        break;
      case 2:
        program.rewrite();
        break;
      case 3:
        b.set_target(r.f.vm, *rc::gen::inRange<std::uint64_t>(0, 6000));
        break;
      default:
        t += *rc::gen::inRange(1, 20) * 0.05;
        r.run_until(t);
        break;
    }
    r.f.host.check_accounting();
    k.check(false);
  }
  if (!program.alive()) return;  // the OOM killer ended the program: nothing to read
  program.check_reads();
  k.check(true);
  r.f.host.check_full();
}

}  // namespace
}  // namespace memvirt
