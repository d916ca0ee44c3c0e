#include "reclaim/xen.hpp"

#include <gtest/gtest.h>

#include "reclaim/mechanism_rig.hpp"

namespace memvirt {
namespace {

using testing::Rig;
using testing::touch_and_exit;

constexpr std::uint64_t kMiB = 256;  // pages

struct XenRig {
  // A 256 MiB guest (maxmem) on a host of `host_mib`, with dom0's 64 MiB.
  explicit XenRig(std::uint64_t host_mib = 512)
      : r(Bytes{256ULL << 20}), xen(r.queue, r.f.host, r.f.costs, host_mib * kMiB, 64 * kMiB) {}
  [[nodiscard]] VmHandle handle() { return VmHandle{r.f.vm, 0, r.f.kernel.get(), &r.f.vcpu}; }
  Rig r;
  XenHost xen;
};

TEST(XenHost, ADomainOwnsItsReservationAndTheRestOfItsRamIsBallooned) {
  XenRig x;
  GuestKernel& k = *x.r.f.kernel;
  const std::uint64_t free_before = k.free_pages() + k.pcp_pages();
  ASSERT_TRUE(x.xen.create_domain(x.handle(), 192 * kMiB));
  EXPECT_EQ(x.xen.domain_pages(x.r.f.vm), 192 * kMiB);
  EXPECT_EQ(x.xen.used_pages(), (64 + 192) * kMiB);
  EXPECT_EQ(x.xen.free_pages(), (512 - 64 - 192) * kMiB);
  // The guest sees maxmem, less the initial balloon.
  EXPECT_EQ(free_before - (k.free_pages() + k.pcp_pages()), 64 * kMiB);
  x.xen.check();
}

TEST(XenHost, BalloonShrinksInBatchesAndGrowsBackFromTheHeap) {
  XenRig x;
  GuestKernel& k = *x.r.f.kernel;
  ASSERT_TRUE(x.xen.create_domain(x.handle(), 192 * kMiB));
  touch_and_exit(k, Bytes{100ULL << 20});
  const std::uint64_t frames = x.r.f.host.frames_used();
  x.xen.set_target(x.r.f.vm, 128 * kMiB);
  x.r.run_until(1);
  EXPECT_EQ(x.xen.domain_pages(x.r.f.vm), 128 * kMiB);
  EXPECT_EQ(x.xen.stats().pages_decreased.value(), 64 * kMiB);
  EXPECT_LT(x.r.f.host.frames_used(), frames);  // ballooned frames are gone from the host
  x.xen.set_target(x.r.f.vm, 1000 * kMiB);      // beyond maxmem: stops at maxmem
  x.r.run_until(2);
  EXPECT_EQ(x.xen.domain_pages(x.r.f.vm), 256 * kMiB);
  EXPECT_EQ(x.xen.used_pages(), (64 + 256) * kMiB);
  x.xen.check();
  k.check(true);
}

TEST(XenHost, GrowingTakesEphemeralTmemPagesBack) {
  XenRig x(/*host_mib=*/384);
  ASSERT_TRUE(x.xen.create_domain(x.handle(), 192 * kMiB));
  FingerprintTmemBackend* backend = nullptr;
  auto owned = std::make_unique<FingerprintTmemBackend>(
      [](Fingerprint) { return static_cast<std::uint32_t>(kPageSize); });
  backend = owned.get();
  Tmem& tmem = x.xen.enable_tmem(TmemConfig{}, std::move(owned));
  (void)backend;
  tmem.new_client(7, 1U << 30, [] { return 0; });
  const TmemPoolId pool = *tmem.new_pool(7, {});
  // Fill the fallow memory (384 - 64 - 192 = 128 MiB) with ephemeral pages.
  for (std::uint32_t i = 0; i < 128 * kMiB; ++i) {
    tmem.put(7, pool, TmemOid{{1, 0, 0}}, i, TmemPage{make_fingerprint(i + 1), {}});
  }
  EXPECT_GT(tmem.pages_used(), 120 * kMiB);
  EXPECT_LE(x.xen.free_pages(), 1 * kMiB);
  x.xen.set_target(x.r.f.vm, 256 * kMiB);
  x.r.run_until(1);
  EXPECT_EQ(x.xen.domain_pages(x.r.f.vm), 256 * kMiB);  // tmem gave its pages back
  EXPECT_LE(tmem.pages_used(), 64 * kMiB);
  EXPECT_GT(tmem.counters().relinquished.value(), 0U);
  x.xen.check();
}

TEST(XenHost, ADomainThatDoesNotFitIsNotBuilt) {
  XenRig x(/*host_mib=*/200);
  EXPECT_FALSE(x.xen.create_domain(x.handle(), 192 * kMiB));
  EXPECT_EQ(x.xen.stats().domain_build_failures.value(), 1U);
  EXPECT_EQ(x.xen.used_pages(), 64 * kMiB);
}

TEST(XenHost, AShortHeapRetriesEverySecond) {
  XenRig x(/*host_mib=*/300);
  ASSERT_TRUE(x.xen.create_domain(x.handle(), 192 * kMiB));  // 44 MiB left
  x.xen.set_target(x.r.f.vm, 256 * kMiB);
  x.r.run_until(0.5);
  EXPECT_EQ(x.xen.domain_pages(x.r.f.vm), (192 + 44) * kMiB);
  EXPECT_GT(x.xen.stats().increase_shortfalls.value(), 0U);
  EXPECT_EQ(x.xen.free_pages(), 0U);
  x.xen.check();
}

}  // namespace
}  // namespace memvirt
