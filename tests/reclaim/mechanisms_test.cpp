#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "reclaim/ksm.hpp"
#include "reclaim/mechanism_rig.hpp"
#include "reclaim/pageone.hpp"
#include "reclaim/ppr.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

using testing::Rig;

TEST(Ppr, RecyclesFreedPagesAndChargesBothSides) {
  Rig r;
  Ppr& ppr = r.add<Ppr>(PprConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  const auto pid = k.spawn("p");
  const auto region = k.mmap(pid, Bytes{4ULL << 20});
  k.touch(pid, region, 1024, [](std::uint64_t i) { return make_fingerprint(i + 1); });
  EXPECT_EQ(r.f.host.frames_used(), 1024U);
  k.munmap(pid, region);
  ppr.recycle_pass();
  EXPECT_EQ(r.f.host.frames_used(), 0U);
  EXPECT_EQ(ppr.stats().pages_recycled.value(), 1024U);
  // Guest: one bit update per page freed or allocated (unit cost of atomic_bit_update: 1100 ns).
  EXPECT_GE(r.f.vcpu.busy().ps, 2048U * r.f.costs.cost(Op::kAtomicBitUpdate).ps);
  EXPECT_GT(r.accounts.get("ppr_pageone_daemon").busy().ps, 0U);
  r.f.host.check_full();
  k.check(true);
}

TEST(Ppr, PageAllocatedAgainBeforeThePassIsNeverRecycled) {
  Rig r;
  Ppr& ppr = r.add<Ppr>(PprConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  const auto pid = k.spawn("p");
  const auto a = k.mmap(pid, Bytes{1ULL << 20});
  k.touch(pid, a, 256, [](std::uint64_t i) { return make_fingerprint(i + 1); });
  k.munmap(pid, a);
  // The same pages come back (hot per-CPU pages first) and get new data before the pass.
  const auto b = k.mmap(pid, Bytes{1ULL << 20});
  k.touch(pid, b, 256, [](std::uint64_t i) { return make_fingerprint(i + 1000); });
  ppr.recycle_pass();
  for (std::uint64_t i = 0; i < 256; ++i) ASSERT_EQ(k.read(pid, b, i), make_fingerprint(i + 1000));
  EXPECT_EQ(ppr.stats().pages_recycled.value(), 0U);
}

KsmConfig ksm_config(std::uint64_t pages_to_scan) {
  KsmConfig c;
  c.pages_to_scan = pages_to_scan;
  c.smart_scan = false;
  return c;
}

TEST(Ksm, EqualPagesMergeOnTheSecondScanNotTheFirst) {
  Rig r;
  Ksm& ksm = r.add<Ksm>(ksm_config(4));
  r.start();
  HostMemory& h = r.f.host;
  h.write(r.f.vm, Gfn{10}, make_fingerprint(7));
  h.write(r.f.vm, Gfn{20}, make_fingerprint(7));
  h.write(r.f.vm, Gfn{30}, make_fingerprint(8));
  h.write(r.f.vm, Gfn{40}, make_fingerprint(9));
  ksm.scan_batch();  // first visit: checksums recorded, nothing merges
  EXPECT_EQ(h.frames_used(), 4U);
  EXPECT_EQ(ksm.counters().pages_volatile, 4U);
  ksm.scan_batch();  // second visit: 10 goes to the unstable tree, 20 finds it
  EXPECT_EQ(h.frames_used(), 3U);
  const auto c = ksm.counters();
  EXPECT_EQ(c.pages_shared, 1U);
  EXPECT_EQ(c.pages_sharing, 1U);
  EXPECT_EQ(c.pages_unshared, 2U);  // 30 and 40 wait in the unstable tree
  EXPECT_EQ(ksm.stats().full_scans.value(), 1U);
  EXPECT_GT(r.accounts.get("ksmd").busy().ps, 0U);
}

TEST(Ksm, VolatilePagesAreNotInsertedWhileTheyChange) {
  Rig r;
  Ksm& ksm = r.add<Ksm>(ksm_config(2));
  r.start();
  HostMemory& h = r.f.host;
  for (int scan = 0; scan < 4; ++scan) {
    h.write(r.f.vm, Gfn{1}, make_fingerprint(100 + scan));  // rewritten every scan
    h.write(r.f.vm, Gfn{2}, make_fingerprint(100 + scan));
    ksm.scan_batch();
  }
  EXPECT_EQ(h.frames_used(), 2U);
  EXPECT_EQ(ksm.counters().pages_volatile, 2U);
  ksm.scan_batch();  // left alone for one scan: now they merge
  EXPECT_EQ(h.frames_used(), 1U);
}

TEST(Ksm, StableNodeChainsGrowAtMaxPageSharing) {
  Rig r;
  KsmConfig cfg = ksm_config(5);
  cfg.max_page_sharing = 2;
  Ksm& ksm = r.add<Ksm>(cfg);
  r.start();
  for (std::uint32_t g = 0; g < 5; ++g) r.f.host.write(r.f.vm, Gfn{g * 3}, make_fingerprint(42));
  ksm.scan_batch();
  ksm.scan_batch();
  // A+B form one KSM page, full at 2; C+D a duplicate; E waits in the unstable tree.
  const auto c = ksm.counters();
  EXPECT_EQ(c.pages_shared, 2U);
  EXPECT_EQ(c.pages_sharing, 2U);
  EXPECT_EQ(c.pages_unshared, 1U);
  EXPECT_EQ(r.f.host.frames_used(), 3U);
  r.f.host.check_full();
}

TEST(Ksm, GuestWriteUnsharesAMergedPage) {
  Rig r;
  Ksm& ksm = r.add<Ksm>(ksm_config(2));
  r.start();
  HostMemory& h = r.f.host;
  h.write(r.f.vm, Gfn{1}, make_fingerprint(5));
  h.write(r.f.vm, Gfn{2}, make_fingerprint(5));
  ksm.scan_batch();
  ksm.scan_batch();
  ASSERT_EQ(h.frames_used(), 1U);
  EXPECT_EQ(h.write(r.f.vm, Gfn{2}, make_fingerprint(6)), WriteEffect::kCopyOnWrite);
  EXPECT_EQ(h.peek(r.f.vm, Gfn{1}), make_fingerprint(5));
  EXPECT_EQ(h.frames_used(), 2U);
  EXPECT_EQ(ksm.counters().pages_sharing, 0U);
}

TEST(Ksm, UseZeroPagesMapsZeroFilledPagesToTheZeroPage) {
  for (const bool use_zero : {false, true}) {
    Rig r;
    KsmConfig cfg = ksm_config(3);
    cfg.use_zero_pages = use_zero;
    Ksm& ksm = r.add<Ksm>(cfg);
    r.start();
    for (std::uint32_t g = 0; g < 3; ++g) r.f.host.write(r.f.vm, Gfn{g}, kZeroContent);
    ksm.scan_batch();
    ksm.scan_batch();
    if (use_zero) {
      EXPECT_EQ(r.f.host.frames_used(), 0U);
      EXPECT_EQ(ksm.stats().ksm_zero_pages.value(), 3U);
    } else {
      EXPECT_EQ(r.f.host.frames_used(), 1U);  // merged into one KSM page of zeros
      EXPECT_EQ(ksm.stats().ksm_zero_pages.value(), 0U);
    }
  }
}

TEST(Ksm, SmartScanSkipsPagesThatKeepFailingToMerge) {
  for (const bool smart : {false, true}) {
    Rig r;
    KsmConfig cfg = ksm_config(64);  // one full scan per batch
    cfg.smart_scan = smart;
    Ksm& ksm = r.add<Ksm>(cfg);
    r.start();
    for (std::uint32_t g = 0; g < 64; ++g)
      r.f.host.write(r.f.vm, Gfn{g}, make_fingerprint(1000 + g));
    for (int i = 0; i < 40; ++i) ksm.scan_batch();
    if (smart) {
      EXPECT_GT(ksm.stats().pages_skipped.value(), 0U);
    } else {
      EXPECT_EQ(ksm.stats().pages_skipped.value(), 0U);
    }
  }
}

TEST(Ksm, EveryScannedPageCostsKsmdItsOwnWork) {
  Rig r;
  Ksm& ksm = r.add<Ksm>(ksm_config(64));
  r.start();
  for (std::uint32_t g = 0; g < 64; ++g) r.f.host.write(r.f.vm, Gfn{g}, make_fingerprint(g + 1));
  const CpuTime spent = ksm.scan_batch();
  EXPECT_EQ(ksm.stats().pages_scanned.value(), 64U);
  EXPECT_GE(spent.ps,
            64 * (r.f.costs.cost(Op::kKsmScanPage).ps + r.f.costs.cost(Op::kXxh64Page).ps));
}

TEST(Ksm, APairMergeChargesThreeInKernelPteUpdates) {
  // try_to_merge_two_pages(): the first page is write-protected and becomes the KSM page, the
  // second is write-protected and replaced. Two runs that differ only in that cost.
  auto ksmd_cpu = [](double pte_update_ns) {
    Rig r;
    r.f.costs.set(Op::kKernelPteUpdate, pte_update_ns, "test");
    Ksm& ksm = r.add<Ksm>(ksm_config(4));
    r.start();
    r.f.host.write(r.f.vm, Gfn{10}, make_fingerprint(7));
    r.f.host.write(r.f.vm, Gfn{20}, make_fingerprint(7));
    ksm.scan_batch();
    ksm.scan_batch();
    EXPECT_EQ(ksm.counters().pages_sharing, 1U);
    return r.accounts.get("ksmd").busy().ps;
  };
  EXPECT_EQ(ksmd_cpu(100'000) - ksmd_cpu(0), 3 * CpuTime{100'000'000}.ps);
}

TEST(Ksm, ALongBatchMergesAsKsmdReachesEachPage) {
  // With pages_to_scan in the millions a batch lasts seconds of ksmd's CPU: its merges land
  // over that time, not all when the batch begins.
  constexpr std::uint32_t kPages = 16384;  // 4 copies of 4096 contents
  Rig r(Bytes::from_pages(kPages));
  Ksm& ksm = r.add<Ksm>(ksm_config(1'000'000));
  r.start();
  for (std::uint32_t g = 0; g < kPages; ++g) {
    r.f.host.write(r.f.vm, Gfn{g}, make_fingerprint((g % 4096) + 1));
  }
  const CostAccount& ksmd = r.accounts.get("ksmd");
  // The first batch starts after sleep_millisecs (20 ms). Two full scans (the second merges)
  // cost well over 40 ms of ksmd's CPU at the profile's costs.
  ASSERT_GT(2 * kPages * r.f.costs.cost(Op::kKsmScanPage).ps, CpuTime{40'000'000'000}.ps);
  r.run_until(0.020 + 0.020);
  const std::uint64_t early = ksm.counters().pages_sharing;
  const std::uint64_t early_cpu = ksmd.busy().ps;
  EXPECT_LE(early_cpu, CpuTime{30'000'000'000}.ps);  // at most 20 ms and one slice of 10 ms
  r.run_until(2.0);
  EXPECT_EQ(ksm.counters().pages_sharing, kPages - 4096);
  EXPECT_LT(early, kPages - 4096);
}

TEST(PageOne, MergesOnlyPagesUnchangedForTwoPeriods) {
  Rig r;
  PageOne& p1 = r.add<PageOne>(PageOneConfig{});
  r.start();
  HostMemory& h = r.f.host;
  for (std::uint32_t g = 0; g < 4; ++g) h.write(r.f.vm, Gfn{g}, make_fingerprint(77));
  p1.merge_pass();  // written since the last pass: counts restart
  EXPECT_EQ(h.frames_used(), 4U);
  h.write(r.f.vm, Gfn{3}, make_fingerprint(77));  // page 3 changes again
  p1.merge_pass();                                // pages 0..2: one clean period
  EXPECT_EQ(h.frames_used(), 4U);
  p1.merge_pass();  // pages 0..2: two clean periods -> merged; page 3: one
  EXPECT_EQ(h.frames_used(), 2U);
  p1.merge_pass();  // page 3 joins
  EXPECT_EQ(h.frames_used(), 1U);
  h.check_full();
}

TEST(PageOne, SkipsPagesPprKnowsAreFree) {
  Rig r;
  r.add<Ppr>(PprConfig{});
  PageOne& p1 = r.add<PageOne>(PageOneConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  const auto pid = k.spawn("p");
  const auto region = k.mmap(pid, Bytes{256 * kPageSize});
  k.touch(pid, region, 256, [](std::uint64_t) { return make_fingerprint(3); });
  k.munmap(pid, region);  // all free, marked, not yet recycled
  for (int i = 0; i < 3; ++i) p1.merge_pass();
  EXPECT_GT(r.f.host.frames_used(), 1U);  // nothing merged: the pages are free
}

// Nothing is lost: under PPR, PageONE and KSM together, with contents that repeat so merges
// happen, every page a process owns reads back what it last wrote, and accounting balances.
RC_GTEST_PROP(Mechanisms, GuestReadsBackWhatItWroteUnderEveryMechanism, ()) {
  Rig r;
  Ppr& ppr = r.add<Ppr>(PprConfig{});
  PageOne& p1 = r.add<PageOne>(PageOneConfig{});
  Ksm& ksm = r.add<Ksm>(ksm_config(*rc::gen::inRange<std::uint64_t>(1, 3000)));
  r.start();
  GuestKernel& k = *r.f.kernel;
  const auto pid = k.spawn("p");
  struct Ref {
    std::uint64_t id;
    std::vector<Fingerprint> data;
  };
  std::vector<Ref> regions;
  const auto content = [] { return make_fingerprint(*rc::gen::inRange<std::uint64_t>(1, 4)); };
  const int steps = *rc::gen::inRange(1, 50);
  for (int s = 0; s < steps; ++s) {
    switch (*rc::gen::inRange(0, 7)) {
      case 0: {
        const std::uint64_t n = *rc::gen::inRange<std::uint64_t>(1, 300);
        Ref ref{k.mmap(pid, Bytes::from_pages(n)), {}};
        for (std::uint64_t i = 0; i < n; ++i) ref.data.push_back(content());
        k.touch(pid, ref.id, n, [&](std::uint64_t i) { return ref.data[i]; });
        regions.push_back(std::move(ref));
        break;
      }
      case 1:
        if (!regions.empty()) {
          Ref& ref = regions[*rc::gen::inRange<std::size_t>(0, regions.size())];
          const std::uint64_t i = *rc::gen::inRange<std::uint64_t>(0, ref.data.size());
          ref.data[i] = content();
          k.write(pid, ref.id, i, ref.data[i]);
        }
        break;
      case 2:
        if (!regions.empty()) {
          const std::size_t i = *rc::gen::inRange<std::size_t>(0, regions.size());
          k.munmap(pid, regions[i].id);
          regions.erase(regions.begin() + static_cast<std::ptrdiff_t>(i));
        }
        break;
      case 3:
        ppr.recycle_pass();
        break;
      case 4:
        p1.merge_pass();
        break;
      default:
        ksm.scan_batch();
        break;
    }
    for (const Ref& ref : regions) {
      for (std::uint64_t i = 0; i < ref.data.size(); ++i)
        RC_ASSERT(k.read(pid, ref.id, i) == ref.data[i]);
    }
    r.f.host.check_accounting();
  }
  r.f.host.check_full();
  k.check(true);
}

}  // namespace
}  // namespace memvirt
