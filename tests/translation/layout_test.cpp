// Contiguity: how self-ballooning, hot-unplug and fragmentation decide what the segments cover,
// and that the tables built from the placement agree with the segments.
#include <gtest/gtest.h>

#include "translation/guest_layout.hpp"
#include "translation/host_layout.hpp"

namespace memvirt::translation {
namespace {

constexpr std::uint64_t kGiB = 1ULL << 30, kMiB = 1ULL << 20;

std::vector<Region> heap(std::uint64_t bytes) {
  return {Region{"heap", Gva{HeapLayout::kHeapBase}, bytes}};
}

TEST(TranslationLayout, FragmentedGuestWithoutSelfBallooningCoversLittle) {
  GuestLayoutConfig c;
  c.memory = 8 * kGiB;
  c.fragmentation = 0.05;  // one 2 MiB block in 20 holds an unmovable page
  const GuestLayout g = build_guest_layout(heap(2 * kGiB), c);
  EXPECT_LT(g.largest_free_run, 512 * kMiB);
  EXPECT_EQ(g.primary_in_segment, g.largest_free_run);
  EXPECT_LT(g.primary_in_segment, g.primary_bytes / 4);
}

TEST(TranslationLayout, SelfBallooningMakesThePrimaryRegionOneSegment) {
  GuestLayoutConfig c;
  c.memory = 8 * kGiB;
  c.fragmentation = 0.05;
  c.self_ballooning = true;
  const GuestLayout g = build_guest_layout(heap(2 * kGiB), c);
  EXPECT_EQ(g.primary_in_segment, g.primary_bytes);
  EXPECT_EQ(g.ballooned, 2 * kGiB);
  EXPECT_EQ(g.hot_added, 2 * kGiB);
  // The hot-added range continues guest memory above the I/O gap.
  const Gpa first = g.segment.translate(Gva{HeapLayout::kHeapBase});
  EXPECT_EQ(first.value(), 4 * kGiB + (8 * kGiB - 3584 * kMiB));  // right after high RAM
  EXPECT_EQ(first.value() % (128 * kMiB), 0U);                    // a hotplug section
  // The guest table agrees with the segment.
  for (const std::uint64_t off : {std::uint64_t{0}, std::uint64_t{12345} * 4096, 2 * kGiB - 4096}) {
    const auto w = g.table->walk(Gva{HeapLayout::kHeapBase + off});
    ASSERT_TRUE(w.present);
    EXPECT_EQ(w.page_base.value(), g.segment.translate(Gva{HeapLayout::kHeapBase + off}).value());
  }
}

TEST(TranslationLayout, HotUnplugLetsOneVmmSegmentSpanGuestMemory) {
  GuestLayoutConfig c;
  c.memory = 8 * kGiB;
  c.self_ballooning = true;
  const HostLayoutConfig hc;
  const GuestLayout kept = build_guest_layout(heap(kGiB), c);
  const HostLayout h1 = build_host_layout(kept, hc);
  c.hot_unplug_io_gap = true;
  const GuestLayout moved = build_guest_layout(heap(kGiB), c);
  const HostLayout h2 = build_host_layout(moved, hc);
  EXPECT_EQ(moved.unplugged, 3584 * kMiB - kGiB);
  // Without hot-unplug 3.5 GiB of RAM stays below the gap, outside the segment.
  EXPECT_EQ(h1.segment.limit - h1.segment.base, 8 * kGiB - 3584 * kMiB + kGiB);
  EXPECT_EQ(h2.segment.limit - h2.segment.base, 8 * kGiB - kGiB + kGiB);
}

TEST(TranslationLayout, NestedTableAgreesWithVmmSegmentExceptEscapes) {
  GuestLayoutConfig c;
  c.memory = 4 * kGiB;
  c.self_ballooning = true;
  c.hot_unplug_io_gap = true;
  for (PageSize host : {PageSize::k4K, PageSize::k2M}) {
    const GuestLayout g = build_guest_layout(heap(256 * kMiB), c);
    HostLayoutConfig hc;
    hc.page_size = host;
    hc.escaped_pages = 8;
    const HostLayout h = build_host_layout(g, hc);
    ASSERT_EQ(h.escaped.size(), 8U);
    for (auto gfn : h.escaped) EXPECT_TRUE(h.filter->maybe_escapes(gfn << 12, PageSize::k4K));
    std::size_t checked = 0;
    for (const auto& [gpa, size] : g.backed) {
      const auto w = h.table->walk(Gpa{gpa});
      ASSERT_TRUE(w.present) << gpa;
      const std::uint64_t hpa = w.page_base.value() + (gpa & (page_bytes(w.size) - 1));
      const bool escaped = std::binary_search(h.escaped.begin(), h.escaped.end(), gpa >> 12);
      if (h.segment.contains(Gpa{gpa})) {
        EXPECT_EQ(hpa == h.segment.translate(Gpa{gpa}).value(), !escaped) << gpa;
        ++checked;
      }
    }
    EXPECT_GT(checked, 1000U);
  }
}

}  // namespace
}  // namespace memvirt::translation
