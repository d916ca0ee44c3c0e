#include "reclaim/reporting.hpp"

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

std::uint64_t reported_free_pages(GuestKernel& k) {
  std::uint64_t n = 0;
  for (auto& z : k.zones()) {
    for (unsigned o = 0; o < kMaxOrder; ++o) {
      const PageList& list = z->free_list(o);
      for (std::uint32_t node = list.head; node != 0; node = z->lists().next(node)) {
        if (k.memmap()[z->lists().gfn(node)].reported()) n += 1ULL << o;
      }
    }
  }
  return n;
}

TEST(Reporting, AHighOrderFreeRequestsAPassTwoSecondsLater) {
  Rig r(Bytes{256ULL << 20});
  auto& rep = r.add<FreePageReporting>(ReportingConfig{});
  r.start();
  // Registration requests the initial flush; let it finish and go idle.
  EXPECT_EQ(rep.state(r.f.vm), ReportingState::kRequested);
  r.run_until(60);
  EXPECT_EQ(rep.state(r.f.vm), ReportingState::kIdle);
  const std::uint64_t passes = rep.stats().passes.value();
  GuestKernel& k = *r.f.kernel;
  touch_and_exit(k, Bytes{128ULL << 20});
  EXPECT_EQ(rep.state(r.f.vm), ReportingState::kRequested);
  EXPECT_EQ(rep.stats().requests.value(), 2U);  // later frees while REQUESTED add nothing
  const std::uint64_t before = r.f.host.frames_used();
  EXPECT_EQ(before, 32768U);
  r.run_until(61.9);
  EXPECT_EQ(rep.stats().passes.value(), passes);
  EXPECT_EQ(r.f.host.frames_used(), before);
  r.run_until(62.0);
  EXPECT_EQ(rep.stats().passes.value(), passes + 1);
  EXPECT_LT(r.f.host.frames_used(), before);
  // Reported blocks go back to the guest's free lists with the Reported flag.
  EXPECT_GT(reported_free_pages(k), 0U);
  EXPECT_LE(reported_free_pages(k), rep.stats().pages_flagged.value());
  EXPECT_GT(r.accounts.get("qemu_discard").busy().ps, 0U);
  k.check(true);
  r.f.host.check_full();
}

TEST(Reporting, AnIdleGuestIsFullyReportedInAboutThirtySeconds) {
  // The kernel's comment on the budget: "This should result in us reporting all pages on an
  // idle system in about 30 seconds." Nothing here encodes 30 s: it follows from the 2 s
  // delay, the initial flush at registration and the budget of a sixteenth of each list
  // plus one call per pass. (Small guests, whose lists hold fewer than 512 blocks, finish
  // sooner: the extra call is then a large share of the list.)
  Rig r(Bytes{16ULL << 30});
  const auto& rep = r.add<FreePageReporting>(ReportingConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  const auto free_now = static_cast<double>(k.free_pages());
  auto reported = [&] { return static_cast<double>(reported_free_pages(k)) / free_now; };
  r.run_until(10);
  const double at_10s = reported();
  r.run_until(20);
  const double at_20s = reported();
  r.run_until(30);
  const double at_30s = reported();
  EXPECT_GT(at_10s, 0.2);
  EXPECT_LT(at_10s, 0.5);  // gradual, not all at once
  EXPECT_LT(at_20s, 0.9);
  EXPECT_GT(at_30s, 0.99);
  EXPECT_GT(rep.stats().budget_exhausted.value(), 0U);
  // Once everything is reported the device goes idle.
  r.run_until(40);
  EXPECT_EQ(rep.state(r.f.vm), ReportingState::kIdle);
  k.check(false);
}

TEST(Reporting, FreedMemoryGoesBackToTheHost) {
  Rig r(Bytes{2ULL << 30});
  r.add<FreePageReporting>(ReportingConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  touch_and_exit(k, Bytes{1900ULL << 20});
  const auto touched = static_cast<double>(r.f.host.frames_used());
  r.run_until(3);
  EXPECT_GT(r.f.host.frames_used(), 0.5 * touched);  // one pass returns a share only
  r.run_until(60);
  EXPECT_LT(r.f.host.frames_used(), 0.01 * touched);
  k.check(true);
  r.f.host.check_full();
}

TEST(Reporting, OrderNineIgnoresSmallFreesOrderZeroReportsThem) {
  for (const unsigned order : {9U, 0U}) {
    Rig r(Bytes{64ULL << 20});
    ReportingConfig c;
    c.order = order;
    auto& rep = r.add<FreePageReporting>(c);
    r.start();
    GuestKernel& k = *r.f.kernel;
    r.run_until(60);  // the initial flush
    const std::uint64_t flushed = rep.stats().pages_reported.value();
    const std::uint64_t requests = rep.stats().requests.value();
    // Take every free page, back it, then free every other one: order-0 holes that
    // cannot merge.
    const std::vector<Gfn> pages = r.take_all_pages();
    std::vector<Gfn> odd;
    for (std::size_t i = 1; i < pages.size(); i += 2) odd.push_back(pages[i]);
    for (const Gfn g : odd) k.free_pages(0, g, 0);
    for (auto& z : k.zones()) z->drain_pcp();
    r.run_until(200);
    if (order == 9) {
      EXPECT_EQ(rep.stats().requests.value(), requests) << "order-0 holes never reach order 9";
      EXPECT_EQ(rep.stats().pages_reported.value(), flushed);
    } else {
      std::size_t discarded = 0;
      for (const Gfn g : odd) discarded += r.f.host.state(r.f.vm, g) == PageState::kUnbacked;
      // All but the holes the min watermark keeps from isolation.
      EXPECT_GT(discarded, odd.size() / 2);
    }
    k.check(true);
  }
}

TEST(Reporting, AllocationClearsReportedAndMergingMakesAnUnreportedBlock) {
  Rig r(Bytes{64ULL << 20});
  ReportingConfig c;
  c.order = 0;
  r.add<FreePageReporting>(c);
  r.start();
  GuestKernel& k = *r.f.kernel;
  touch_and_exit(k, Bytes{32ULL << 20});
  r.run_until(120);
  const std::uint64_t reported = reported_free_pages(k);
  EXPECT_GT(reported, 0U);
  // An allocation takes a reported block off the list: the page in use is not Reported.
  const std::optional<Gfn> g = k.alloc_pages(0, 3);
  ASSERT_TRUE(g.has_value());
  EXPECT_FALSE(k.memmap()[*g].reported());
  EXPECT_LE(reported_free_pages(k), reported - 8);
  // Freeing it merges it back with its (reported) buddies into an unreported block.
  k.free_pages(0, *g, 3);
  Zone& z = k.zone_of(*g);
  for (unsigned o = 3; o < kMaxOrder; ++o) {
    const Gfn head{g->value() & ~((1U << o) - 1)};
    const PageMeta m = k.memmap()[head];
    if (m.state() == GuestPageState::kBuddy && m.order().value() == o) {
      EXPECT_FALSE(m.reported()) << "merged block at order " << o;
      break;
    }
  }
  z.check(true);
}

TEST(Reporting, MadvFreeKeepsFramesUntilTheHostNeedsThem) {
  Rig r(Bytes{256ULL << 20});
  ReportingConfig c;
  c.discard = DiscardMode::kFree;
  r.add<FreePageReporting>(c);
  r.start();
  GuestKernel& k = *r.f.kernel;
  // Back every page the guest can give, then free them all.
  for (const Gfn g : r.take_all_pages()) k.free_pages(0, g, 0);
  for (auto& z : k.zones()) z->drain_pcp();
  const std::uint64_t before = r.f.host.frames_used();
  r.run_until(60);
  const std::uint64_t lazy = r.f.host.lazy_frames();
  EXPECT_GT(lazy, 0U);
  EXPECT_EQ(r.f.host.frames_used(), before);  // still resident until reclaimed
  // The guest reuses memory before any reclaim: no host fault, no zeroing on the host.
  const std::uint64_t faults = r.f.host.vm_stats(r.f.vm).faults_in.value();
  const auto pid = k.spawn("again");
  const auto region = k.mmap(pid, Bytes{4ULL << 20});
  k.touch(pid, region, 1024, [](std::uint64_t i) { return make_fingerprint(i + 99); });
  EXPECT_EQ(r.f.host.vm_stats(r.f.vm).faults_in.value(), faults);
  EXPECT_GT(r.f.host.vm_stats(r.f.vm).lazy_reused.value(), 0U);
  for (std::uint64_t i = 0; i < 1024; ++i)
    ASSERT_EQ(k.read(pid, region, i), make_fingerprint(i + 99));
  // Host pressure takes the rest back.
  const std::uint64_t left = r.f.host.lazy_frames();
  EXPECT_EQ(r.f.host.reclaim_lazy(left), left);
  EXPECT_EQ(r.f.host.lazy_frames(), 0U);
  r.f.host.check_full();
  for (std::uint64_t i = 0; i < 1024; ++i)
    ASSERT_EQ(k.read(pid, region, i), make_fingerprint(i + 99));
}

TEST(Reporting, AZoneBelowItsWatermarkIsSkipped) {
  Rig r(Bytes{64ULL << 20});
  auto& rep = r.add<FreePageReporting>(ReportingConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  // Free 4 MiB, then fill the rest: the zone's free pages stay below low + 32 << 9.
  const auto pid = k.spawn("p");
  const auto a = k.mmap(pid, Bytes{4ULL << 20});
  k.touch(pid, a, 1024, [](std::uint64_t i) { return make_fingerprint(i + 1); });
  const auto b = k.mmap(pid, Bytes{60ULL << 20});
  k.touch(pid, b, Bytes{50ULL << 20}.pages(),
          [](std::uint64_t i) { return make_fingerprint(i + 5); });
  k.munmap(pid, a);
  for (auto& z : k.zones()) z->drain_pcp();
  r.run_until(10);
  EXPECT_GT(rep.stats().zones_skipped.value(), 0U);
  EXPECT_EQ(rep.stats().pages_reported.value(), 0U);
}

TEST(Reporting, BadParametersNameTheirField) {
  auto parse = [](const std::string& text) {
    const YAML::Node n = YAML::Load(text);
    auto ctx = std::make_shared<ParamContext>("s.yaml");
    Params p(n, "reclaim.0", ctx);
    return FreePageReporting::config_from(p);
  };
  EXPECT_EQ(parse("{order: 0}").order, 0U);
  EXPECT_THROW(parse("{order: 11}"), InputError);
  EXPECT_THROW(parse("{discard: sometimes}"), InputError);
  EXPECT_THROW(parse("{delay: 0s}"), InputError);
  EXPECT_THROW(parse("{capacity: 0}"), InputError);
  try {
    parse("{order: 11}");
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("order"), std::string::npos) << e.what();
  }
}

// Random programs under reporting (both discard modes, any order): every page a program
// still owns reads back what it last wrote, and the guest and host books balance.
RC_GTEST_PROP(Reporting, GuestReadsBackWhatItWroteWhileReporting, ()) {
  Rig r(Bytes{24ULL << 20});
  ReportingConfig c;
  c.order = *rc::gen::inRange(0U, 11U);
  c.discard = *rc::gen::element(DiscardMode::kDontNeed, DiscardMode::kFree);
  r.add<FreePageReporting>(c);
  r.start();
  GuestKernel& k = *r.f.kernel;
  testing::RandomProgram program(k, 4000);
  double t = 0;
  const int steps = *rc::gen::inRange(1, 40);
  for (int s = 0; s < steps; ++s) {
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
        r.f.host.reclaim_lazy(*rc::gen::inRange<std::uint64_t>(0, 3000));
        break;
      default:
        t += *rc::gen::inRange(1, 40) * 0.5;
        r.run_until(t);
        break;
    }
    r.f.host.check_accounting();
    k.check(false);
  }
  program.check_reads();
  k.check(true);
  r.f.host.check_full();
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

TEST(Reporting, APassLeavesTheFirstUnprocessedBlockAtTheHead) {
  // After a pass that spent its budget, the list is rotated so the next pass starts at the
  // first block not yet reported, not at the reported blocks put back at the head.
  testing::Rig r(Bytes{16ULL << 30});
  const auto& rep = r.add<FreePageReporting>(ReportingConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  Zone& normal = *k.zones().back();
  for (int pass = 1; pass <= 3; ++pass) {
    r.run_until(2.0 * pass);
    ASSERT_EQ(rep.stats().passes.value(), static_cast<std::uint64_t>(pass));
    const PageList& list = normal.free_list(kMaxOrder - 1);
    EXPECT_FALSE(k.memmap()[normal.lists().gfn(list.head)].reported()) << "pass " << pass;
    // Reported blocks sit together after the unreported ones.
    bool seen_reported = false;
    for (std::uint32_t n = list.head; n != 0; n = normal.lists().next(n)) {
      const bool reported = k.memmap()[normal.lists().gfn(n)].reported();
      if (seen_reported) {
        ASSERT_TRUE(reported) << "pass " << pass;
      }
      seen_reported = seen_reported || reported;
    }
    EXPECT_TRUE(seen_reported);
  }
}

}  // namespace
}  // namespace memvirt
