#include "translation/tlb.hpp"

#include <gtest/gtest.h>

#include "translation/set_assoc.hpp"

namespace memvirt::translation {
namespace {

TEST(TlbSetAssoc, EvictsLeastRecentlyUsedWithinASet) {
  SetAssoc a(8, 4);  // 2 sets; even keys share set 0
  for (std::uint64_t k : {0, 2, 4, 6}) a.insert(k, k * 10);
  std::uint64_t p = 0;
  ASSERT_TRUE(a.lookup(0, &p));  // 0 becomes most recent; 2 is now the LRU
  EXPECT_EQ(p, 0U);
  EXPECT_EQ(a.insert(8, 80), 2U);
  EXPECT_FALSE(a.contains(2));
  EXPECT_TRUE(a.contains(0));
  EXPECT_TRUE(a.contains(8));
  // The other set is untouched by set-0 traffic.
  a.insert(1, 1);
  for (std::uint64_t k : {10, 12, 14, 16}) a.insert(k, k);
  EXPECT_TRUE(a.contains(1));
}

TEST(TlbSetAssoc, ReinsertRefreshesWithoutEviction) {
  SetAssoc a(4, 4);
  for (std::uint64_t k : {1, 2, 3, 4}) a.insert(k, k);
  EXPECT_EQ(a.insert(1, 100), SetAssoc::kEmpty);
  std::uint64_t p = 0;
  ASSERT_TRUE(a.lookup(1, &p));
  EXPECT_EQ(p, 100U);
  EXPECT_EQ(a.insert(5, 5), 2U);  // 1 was refreshed, so 2 is the oldest
}

TEST(TlbSetAssoc, NonPowerOfTwoSets) {
  SetAssoc a(12 * 2, 2);  // 12 sets, hashed
  EXPECT_EQ(a.sets(), 12U);
  std::vector<std::uint64_t> same;  // three keys of one set
  for (std::uint64_t k = 0; same.size() < 3; ++k) {
    if (a.set_of(k) == a.set_of(1000)) same.push_back(k);
  }
  std::vector<std::size_t> used(12, 0);
  for (std::uint64_t k = 0; k < 1200; ++k) ++used[a.set_of(k)];
  for (auto n : used) EXPECT_GT(n, 50U);  // every set is used
  for (auto k : same) a.insert(k, k);
  EXPECT_FALSE(a.contains(same[0]));
  EXPECT_TRUE(a.contains(same[1]));
  EXPECT_TRUE(a.contains(same[2]));
}

TEST(TlbHierarchyTest, SandyBridgeDefaultsHoldWhatTableViSays) {
  TlbHierarchy t{TlbConfig{}};
  // 64-entry 4-way L1 (16 sets): 5 pages 16 pages apart map to one set.
  for (std::uint64_t i = 0; i < 5; ++i) {
    t.insert(i * 16 * 4096, TlbSpace::kVirtual, PageSize::k4K, 0x100000 + i * 4096);
  }
  TlbHit hit{};
  EXPECT_FALSE(t.lookup_l1(0, TlbSpace::kVirtual, &hit));  // evicted from L1 ...
  EXPECT_TRUE(t.lookup_l2(0, TlbSpace::kVirtual, &hit));   // ... still in the 512-entry L2
  EXPECT_EQ(hit.out_base, 0x100000U);
  EXPECT_TRUE(t.lookup_l1(0, TlbSpace::kVirtual, &hit));  // refilled into L1
}

TEST(TlbHierarchyTest, SpacesAreDistinct) {
  TlbHierarchy t{TlbConfig{}};
  t.insert(0x5000, TlbSpace::kGuestPhysical, PageSize::k4K, 0x9000);
  TlbHit hit{};
  EXPECT_FALSE(t.lookup_l1(0x5000, TlbSpace::kVirtual, &hit));
  EXPECT_TRUE(t.lookup_l1(0x5123, TlbSpace::kGuestPhysical, &hit));
  EXPECT_EQ(hit.out_base, 0x9000U);
}

TEST(TlbHierarchyTest, LargePagesLiveInL1OnlyAndOneGigIsFullyAssociative) {
  TlbHierarchy t{TlbConfig{}};
  for (std::uint64_t i = 0; i < 5; ++i) {
    t.insert(i << 30, TlbSpace::kVirtual, PageSize::k1G, (i + 8) << 30);
  }
  TlbHit hit{};
  EXPECT_FALSE(t.lookup_l1(0, TlbSpace::kVirtual, &hit));  // 4 entries: the first is gone
  EXPECT_FALSE(t.lookup_l2(0, TlbSpace::kVirtual, &hit));  // no 1 GiB L2 array
  ASSERT_TRUE(t.lookup_l1((4ULL << 30) + 12345, TlbSpace::kVirtual, &hit));
  EXPECT_EQ(hit.size, PageSize::k1G);
  EXPECT_EQ(hit.out_base, 12ULL << 30);
}

TEST(TlbHierarchyTest, MissingArraySplintersIntoSmallerPages) {
  TlbConfig c;
  c.l1[2] = {};  // no 1 GiB array: a 1 GiB mapping is cached as the 2 MiB piece used
  TlbHierarchy t{c};
  t.insert((1ULL << 30) + (3ULL << 21) + 77, TlbSpace::kVirtual, PageSize::k1G, 5ULL << 30);
  TlbHit hit{};
  ASSERT_TRUE(t.lookup_l1((1ULL << 30) + (3ULL << 21), TlbSpace::kVirtual, &hit));
  EXPECT_EQ(hit.size, PageSize::k2M);
  EXPECT_EQ(hit.out_base, (5ULL << 30) + (3ULL << 21));
  EXPECT_FALSE(t.lookup_l1(1ULL << 30, TlbSpace::kVirtual, &hit));
}

}  // namespace
}  // namespace memvirt::translation
