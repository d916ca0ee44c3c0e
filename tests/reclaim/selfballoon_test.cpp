#include "reclaim/selfballoon.hpp"

#include <gtest/gtest.h>

#include "reclaim/mechanism_rig.hpp"
#include "reclaim/xen.hpp"

namespace memvirt {
namespace {

constexpr std::uint64_t mib(std::uint64_t n) {
  return n * 256;
}  // pages

SelfBalloon kernel_driver() {
  return SelfBalloon(SelfBalloonConfig{});
}

TEST(SelfBalloon, KernelDriverShrinksAnEighthOfTheWayAndGrowsAtOnce) {
  const SelfBalloon sb = kernel_driver();
  const std::uint64_t reserve = 1000, committed = 40000, max_pfn = mib(384);
  const std::uint64_t goal = committed + reserve;
  EXPECT_EQ(sb.target_pages(mib(384), committed, reserve, max_pfn),
            mib(384) - (mib(384) - goal) / 8);
  EXPECT_EQ(sb.target_pages(30000, 50000, reserve, max_pfn), 50000U + reserve);
  EXPECT_EQ(sb.target_pages(goal, committed, reserve, max_pfn), goal);  // at the goal: no change
}

TEST(SelfBalloon, KernelDriverFloorIsThePiecewiseLinearFunction) {
  const SelfBalloon sb = kernel_driver();
  bool floored = false;
  // U = 384 MiB - reserve, between 64 and 512 MiB: reserve + 40 MiB + (U - 40 MiB) / 8.
  const std::uint64_t reserve = 1000, max_pfn = mib(384), u = max_pfn - reserve;
  EXPECT_EQ(sb.target_pages(mib(50), 0, reserve, max_pfn, &floored),
            reserve + mib(40) + (u - mib(40)) / 8);
  EXPECT_TRUE(floored);
  // U >= 512 MiB: reserve + 99 MiB + (U - 99 MiB) / 32.
  const std::uint64_t big = mib(2048), ub = big - reserve;
  EXPECT_EQ(sb.target_pages(mib(100), 0, reserve, big), reserve + mib(99) + (ub - mib(99)) / 32);
  // Below 16 MiB of useful memory: no ballooning at all.
  EXPECT_EQ(sb.target_pages(mib(10), 0, 100, mib(12)), mib(12));
  // min_usable replaces the function.
  SelfBalloonConfig c;
  c.min_usable = Bytes{64ULL << 20};
  EXPECT_EQ(SelfBalloon(c).target_pages(mib(50), 0, reserve, max_pfn), reserve + mib(64));
}

TEST(SelfBalloon, XenballoondUsesItsOwnConstantsAndTheBalloonDriversMinimum) {
  SelfBalloonConfig c;
  c.driver = SelfBalloonDriver::kXenballoond;
  c.down_hysteresis = 10;
  c.interval = Duration::seconds(1);
  const SelfBalloon sb(c);
  const std::uint64_t committed = mib(200);
  EXPECT_EQ(sb.target_pages(mib(384), committed, 1000, mib(384)),
            mib(384) - (mib(384) - committed) / 10);  // no reserve in its goal
  // minimum_target() of a 384 MiB guest: 40 MiB + 384 / 4 = 136 MiB.
  EXPECT_EQ(sb.target_pages(mib(140), 0, 1000, mib(384)), mib(136));
}

TEST(SelfBalloon, FrontswapSelfShrinkingWaitsOutItsInertiaThenPullsBackATwentieth) {
  const SelfBalloon sb = kernel_driver();
  SelfBalloon::ShrinkState st;
  EXPECT_EQ(sb.selfshrink_target(1000, st), std::nullopt);       // grown from 0: inertia restarts
  EXPECT_EQ(sb.selfshrink_target(1000, st), std::nullopt);       // inertia 3 -> 2
  EXPECT_EQ(sb.selfshrink_target(1000, st), std::nullopt);       // 2 -> 1
  EXPECT_EQ(sb.selfshrink_target(1000, st), 1000U - 1000 / 20);  // 1 -> 0: shrink
  EXPECT_EQ(sb.selfshrink_target(950, st), std::nullopt);        // inertia again
  EXPECT_EQ(sb.selfshrink_target(2000, st), std::nullopt);       // grew: restarts
  EXPECT_EQ(sb.selfshrink_target(0, st), std::nullopt);          // nothing to shrink
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sb.selfshrink_target(15, st), std::nullopt);
  EXPECT_EQ(sb.selfshrink_target(15, st), 0U);  // at most frontswap_hysteresis left: all
}

TEST(SelfBalloon, DrivesTheDomainTowardsCommittedMemory) {
  testing::Rig r(Bytes{512ULL << 20});
  XenHost xen(r.queue, r.f.host, r.f.costs, mib(2048), mib(256));
  r.env.xen = &xen;
  SelfBalloon& sb = r.add<SelfBalloon>(SelfBalloonConfig{});
  for (auto& m : r.mechanisms) m->start(r.env);
  const VmHandle h{r.f.vm, 0, r.f.kernel.get(), &r.f.vcpu};
  ASSERT_TRUE(xen.create_domain(h, mib(384)));
  for (auto& m : r.mechanisms) m->attach(h);
  r.run_until(600);
  // Nothing is committed: the domain falls to the floor and stays there.
  const std::uint64_t floor = sb.target_pages(0, 0, totalreserve_pages(*r.f.kernel), mib(384));
  EXPECT_EQ(xen.domain_pages(r.f.vm), floor);
  EXPECT_GT(sb.stats().steps.value(), 100U);
  EXPECT_GT(xen.free_pages(), mib(2048 - 256 - 384));
  // A program commits 300 MiB: the next step grows the domain to the goal.
  const std::uint32_t pid = r.f.kernel->spawn("p");
  r.f.kernel->mmap(pid, Bytes{300ULL << 20});
  r.run_until(606);
  EXPECT_GE(xen.domain_pages(r.f.vm), mib(300));
  xen.check();
  r.f.kernel->check(true);
}

}  // namespace
}  // namespace memvirt
