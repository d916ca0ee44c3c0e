// The buddy allocator against a reference model. The reference keeps only the set of free
// pages; since buddies always merge, that set has exactly one decomposition into free blocks
// (the largest aligned blocks of free pages, at most order 10), which the allocator's free
// lists must equal after every operation.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "test_util.hpp"

namespace memvirt {
namespace {

using Blocks = std::set<std::pair<std::uint32_t, unsigned>>;  // (gfn, order)

// Canonical decomposition of the free set of one zone [start, end).
void decompose(const std::vector<bool>& free, std::uint32_t g, unsigned order, std::uint32_t start,
               std::uint32_t end, Blocks* out) {
  if (g + (1U << order) <= start || g >= end) return;
  bool all = g >= start && g + (1U << order) <= end;
  for (std::uint32_t i = g; all && i < g + (1U << order); ++i) all = free[i];
  if (all) {
    out->insert({g, order});
    return;
  }
  if (order == 0) return;
  decompose(free, g, order - 1, start, end, out);
  decompose(free, g + (1U << (order - 1)), order - 1, start, end, out);
}

Blocks expected_blocks(const GuestKernel& k, const std::vector<bool>& free) {
  Blocks b;
  for (const auto& z : k.zones()) {
    const std::uint32_t s = z->start().value(), e = z->end().value();
    for (std::uint32_t g = s & ~1023U; g < e; g += 1024) decompose(free, g, 10, s, e, &b);
  }
  return b;
}

Blocks actual_blocks(GuestKernel& k) {
  Blocks b;
  for (const auto& z : k.zones()) {
    for (unsigned o = 0; o < kMaxOrder; ++o) {
      for (std::uint32_t n = z->free_list(o).head; n != 0; n = k.memmap().lists.next(n)) {
        b.insert({k.memmap().lists.gfn(n).value(), o});
      }
    }
  }
  return b;
}

RC_GTEST_PROP(Buddy, FreeListsMatchTheReferenceDecomposition, ()) {
  // A 48 MiB guest: DMA (16 MiB) and DMA32, so merges must stop at the zone boundary.
  testing::GuestFixture f(Bytes{48ULL << 20}, false, 2);
  GuestKernel& k = *f.kernel;
  std::vector<bool> free(k.total_pages(), true);
  std::vector<std::pair<Gfn, unsigned>> held;
  const int steps = *rc::gen::inRange(1, 400);
  for (int s = 0; s < steps; ++s) {
    const bool do_alloc = held.empty() || *rc::gen::inRange(0, 100) < 60;
    const unsigned cpu = *rc::gen::inRange(0, 2);
    if (do_alloc) {
      const unsigned order = *rc::gen::weightedElement<unsigned>({{8, 0}, {1, 1}, {1, 3}, {1, 9}});
      const auto g = k.alloc_pages(cpu, order);
      if (!g) continue;
      RC_ASSERT(g->value() % (1U << order) == 0U);
      for (std::uint32_t i = 0; i < (1U << order); ++i) {
        RC_ASSERT(free[g->value() + i]);  // never hands out a page that is in use
        free[g->value() + i] = false;
      }
      held.emplace_back(*g, order);
    } else {
      const std::size_t i = *rc::gen::inRange<std::size_t>(0, held.size());
      const auto [g, order] = held[i];
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
      k.free_pages(cpu, g, order);
      for (std::uint32_t j = 0; j < (1U << order); ++j) free[g.value() + j] = true;
    }
    // Pages on per-CPU lists are free but not in the buddy lists: mark them for the check.
    std::vector<bool> buddy_free = free;
    for (const auto& z : k.zones()) {
      for (unsigned c = 0; c < 2; ++c) {
        for (std::uint32_t n = z->pcp(c).list.head; n != 0; n = k.memmap().lists.next(n)) {
          const Gfn g = k.memmap().lists.gfn(n);
          RC_ASSERT(free[g.value()]);
          buddy_free[g.value()] = false;
        }
      }
    }
    RC_ASSERT(actual_blocks(k) == expected_blocks(k, buddy_free));
  }
  k.check(true);
  for (auto& z : k.zones()) z->drain_pcp();
  RC_ASSERT(actual_blocks(k) == expected_blocks(k, free));
  std::uint64_t nfree = 0;
  for (bool b : free) nfree += b;
  RC_ASSERT(k.free_pages() == nfree);
}

TEST(Buddy, FreshZoneIsAllMaxOrderBlocksHighestFirst) {
  testing::GuestFixture f(Bytes{64ULL << 20});
  const Zone& dma32 = *f.kernel->zones()[1];
  EXPECT_EQ(dma32.name(), "DMA32");
  EXPECT_EQ(dma32.free_list(10).count, (48U << 20) / (4U << 20));
  EXPECT_EQ(dma32.free_pages(), (48ULL << 20) >> 12);
  // Boot frees max-order blocks in address order, each to the list head: the head is the
  // highest block, so a fresh guest allocates from the top of its memory, as Linux does.
  const auto& lists = f.kernel->memmap().lists;
  EXPECT_EQ(lists.gfn(dma32.free_list(10).head).value(), ((64U << 20) >> 12) - 1024);
}

TEST(Buddy, SplitKeepsTheLowerHalfAndListsTheUpperHalves) {
  testing::GuestFixture f(Bytes{32ULL << 20});
  Zone& z = *f.kernel->zones()[1];
  const auto g = f.kernel->alloc_pages(0, 8);  // from a fresh order-10 block
  ASSERT_TRUE(g.has_value());
  const auto& lists = f.kernel->memmap().lists;
  ASSERT_EQ(z.free_list(9).count, 1U);
  ASSERT_EQ(z.free_list(8).count, 1U);
  EXPECT_EQ(lists.gfn(z.free_list(9).head).value(), g->value() + 512);
  EXPECT_EQ(lists.gfn(z.free_list(8).head).value(), g->value() + 256);
}

TEST(Buddy, FreeGoesToTheTailOnlyWhenTheHigherBuddyIsFree) {
  testing::GuestFixture f(Bytes{32ULL << 20});
  GuestKernel& k = *f.kernel;
  Zone& z = *k.zones()[1];
  const auto& lists = k.memmap().lists;
  const Gfn a = *k.alloc_pages(0, 10);
  const Gfn b = *k.alloc_pages(0, 10);
  // In block b nothing else is free: b+2 (order 1) has an in-use buddy and an in-use
  // higher buddy (b+4, order 2), so it goes to the head.
  k.free_pages(0, Gfn{b.value() + 2}, 1);
  EXPECT_EQ(lists.gfn(z.free_list(1).head).value(), b.value() + 2);
  // In block a, free a+4 (order 2) first; then a+2's higher buddy (a+4, order 2) is free,
  // so a+2 is likely to merge soon and goes to the tail.
  k.free_pages(0, Gfn{a.value() + 4}, 2);
  k.free_pages(0, Gfn{a.value() + 2}, 1);
  EXPECT_EQ(lists.gfn(z.free_list(1).tail).value(), a.value() + 2);
  EXPECT_EQ(lists.gfn(z.free_list(1).head).value(), b.value() + 2);
  // Freeing a+0 (order 1) merges with a+2, then with a+4, into an order-3 block at a.
  k.free_pages(0, a, 1);
  EXPECT_EQ(z.free_list(1).count, 1U);
  EXPECT_EQ(lists.gfn(z.free_list(3).head).value(), a.value());
  k.check(true);
}

TEST(PageList, RotateToFrontKeepsOrder) {
  PageListPool pool;
  PageList list;
  std::vector<std::uint32_t> nodes;
  for (std::uint32_t g = 0; g < 5; ++g) nodes.push_back(pool.push_back(list, Gfn{g}));
  pool.rotate_to_front(list, nodes[3]);
  std::vector<std::uint32_t> seen;
  for (std::uint32_t n = list.head; n != 0; n = pool.next(n)) seen.push_back(pool.gfn(n).value());
  EXPECT_EQ(seen, (std::vector<std::uint32_t>{3, 4, 0, 1, 2}));
  EXPECT_EQ(pool.gfn(list.tail).value(), 2U);
  pool.remove(list, nodes[0]);
  seen.clear();
  for (std::uint32_t n = list.tail; n != 0; n = pool.prev(n)) seen.push_back(pool.gfn(n).value());
  EXPECT_EQ(seen, (std::vector<std::uint32_t>{2, 1, 4, 3}));
  EXPECT_EQ(list.count, 4U);
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

TEST(Shuffle, PermutesTopOrderListsDeterministically) {
  auto order_of = [](std::uint64_t seed) {
    MemMap map;
    map.pages = PageMetaTable(1U << 16);
    Zone z("Normal", map, Gfn{0}, 1U << 16, 1);
    z.enable_shuffle(seed);
    z.shuffle_free_lists();
    std::vector<std::uint32_t> heads;
    for (std::uint32_t n = z.free_list(kShuffleOrder).head; n != 0; n = map.lists.next(n)) {
      heads.push_back(map.lists.gfn(n).value());
    }
    z.check(true);
    return heads;
  };
  const auto a = order_of(1);
  EXPECT_EQ(a.size(), 64U);
  EXPECT_EQ(a, order_of(1));
  EXPECT_NE(a, order_of(2));
  EXPECT_FALSE(std::is_sorted(a.begin(), a.end()));
}

}  // namespace
}  // namespace memvirt
