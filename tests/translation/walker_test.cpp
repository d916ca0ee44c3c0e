// Walker reference counts per mode against hand-worked examples. Every memory reference costs
// 100 cycles (a cache model with no levels), an add 1 cycle and a nested-TLB hit 7 cycles, so
// cycle counts can be worked out by hand too.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "translation/translator.hpp"

namespace memvirt::translation {
namespace {

constexpr std::uint64_t kGiB = 1ULL << 30, kMiB = 1ULL << 20, kKiB = 1ULL << 10;
constexpr std::uint64_t kDataGva = 1 * kGiB;       // the workload's page
constexpr std::uint64_t kDataGpa = 1 * kGiB;       // where the guest put it (1 GiB aligned)
constexpr std::uint64_t kGuestTables = 16 * kMiB;  // guest page-table pages, one after another
constexpr std::uint64_t kHostOffset = 4 * kGiB;    // host places guest memory at +4 GiB
constexpr std::uint64_t kHostTables = 2 * kGiB;    // nested page-table pages

struct Machine {
  explicit Machine(PageSize guest_size = PageSize::k4K, PageSize host_size = PageSize::k4K)
      : guest([this] { return Gpa{kGuestTables + 4 * kKiB * guest_pages++}; }),
        nested([this] { return Hpa{kHostTables + 4 * kKiB * host_pages++}; }) {
    // Two neighbouring data pages.
    for (std::uint64_t i = 0; i < 2; ++i) {
      guest.map(Gva{kDataGva + i * page_bytes(guest_size)}, guest_size,
                Gpa{kDataGpa + i * page_bytes(guest_size)});
    }
    // The host backs the guest's table pages and the start of its data at +4 GiB.
    const std::uint64_t h = page_bytes(host_size);
    for (const std::uint64_t start : {std::uint64_t{0}, kDataGpa}) {
      for (std::uint64_t g = start; g < start + std::max<std::uint64_t>(64 * kMiB, h); g += h) {
        nested.map(Gpa{g}, host_size, Hpa{g + kHostOffset});
      }
    }
  }
  TranslatorSetup setup(Mode mode, bool nested_in_tlb = false) const {
    TranslatorSetup s;
    s.mode = mode;
    s.cache.memory_cycles = 100;
    s.nested_in_tlb = nested_in_tlb;
    s.model_data = false;
    // Guest segment: gVA [1 GiB, 1 GiB + 64 MiB) -> gPA at 512 MiB, the same mapping the
    // guest table holds. VMM segment: gPA [0, 4 GiB) -> hPA + 4 GiB, as the nested table.
    s.guest_segment = {kDataGva, kDataGva + 64 * kMiB,
                       static_cast<std::int64_t>(kDataGpa) - static_cast<std::int64_t>(kDataGva)};
    s.vmm_segment = {0, 4 * kGiB, static_cast<std::int64_t>(kHostOffset)};
    return s;
  }
  std::uint64_t guest_pages = 0, host_pages = 0;
  GuestPageTable guest;
  NestedPageTable nested;
};

TEST(WalkerNative, FourReferencesAtTheEntriesOfEachLevel) {
  Machine m;
  Translator t(m.setup(Mode::kBaseNative), m.guest, nullptr, nullptr, nullptr);
  EXPECT_EQ(t.translate(Gva{kDataGva + 0x123}).value(), kDataGpa + 0x123);
  EXPECT_EQ(t.stats().walks, 1U);
  EXPECT_EQ(t.stats().walk_refs, 4U);
  EXPECT_EQ(t.stats().walk_cycles, 400U);
  // gVA 1 GiB: PML4 index 0, PDPT index 1, PD index 0, PT index 0; the table pages were
  // allocated root first.
  const auto w = m.guest.walk(Gva{kDataGva});
  EXPECT_EQ(w.entry[0].value(), kGuestTables + 0);
  EXPECT_EQ(w.entry[1].value(), kGuestTables + 4 * kKiB + 8);
  EXPECT_EQ(w.entry[2].value(), kGuestTables + 8 * kKiB);
  EXPECT_EQ(w.entry[3].value(), kGuestTables + 12 * kKiB);
  t.translate(Gva{kDataGva + 0xFFF});  // same page: L1 TLB hit
  EXPECT_EQ(t.stats().walks, 1U);
  EXPECT_EQ(t.stats().l1_misses, 1U);
}

TEST(WalkerNative, LargePagesShortenTheWalk) {
  Machine m2(PageSize::k2M, PageSize::k4K);
  Translator t2(m2.setup(Mode::kBaseNative), m2.guest, nullptr, nullptr, nullptr);
  t2.translate(Gva{kDataGva + 5 * kMiB / 4});
  EXPECT_EQ(t2.stats().walk_refs, 3U);
  Machine m1(PageSize::k1G, PageSize::k4K);
  Translator t1(m1.setup(Mode::kBaseNative), m1.guest, nullptr, nullptr, nullptr);
  t1.translate(Gva{kDataGva});
  EXPECT_EQ(t1.stats().walk_refs, 2U);
}

TEST(WalkerNestedTwoD, TwentyFourReferencesWithFourKibPagesOnBothSides) {
  Machine m;
  Translator t(m.setup(Mode::kBaseVirtualized), m.guest, &m.nested, nullptr, nullptr);
  EXPECT_EQ(t.translate(Gva{kDataGva + 8}).value(), kDataGpa + kHostOffset + 8);
  // (4 + 1) x (4 + 1) - 1: four guest entries, each preceded by a 4-step nested walk, and a
  // final nested walk of the data gPA.
  EXPECT_EQ(t.stats().walk_refs, 24U);
  EXPECT_EQ(t.stats().guest_refs, 4U);
  EXPECT_EQ(t.stats().nested_refs, 20U);
  EXPECT_EQ(t.stats().walk_cycles, 2400U);
  EXPECT_EQ(t.stats().walks_by_refs[24], 1U);
}

TEST(WalkerNestedTwoD, PageSizesOnEachSide) {
  struct Case {
    PageSize guest, host;
    std::uint64_t refs;
  };
  // (g + 1)(h + 1) - 1 with g, h the levels walked on each side.
  for (const Case c :
       {Case{PageSize::k2M, PageSize::k2M, 15}, Case{PageSize::k4K, PageSize::k2M, 19},
        Case{PageSize::k2M, PageSize::k4K, 19}, Case{PageSize::k4K, PageSize::k1G, 14},
        Case{PageSize::k1G, PageSize::k1G, 8}}) {
    Machine m(c.guest, c.host);
    Translator t(m.setup(Mode::kBaseVirtualized), m.guest, &m.nested, nullptr, nullptr);
    t.translate(Gva{kDataGva});
    EXPECT_EQ(t.stats().walk_refs, c.refs)
        << page_size_name(c.guest) << " guest, " << page_size_name(c.host) << " host";
  }
}

TEST(WalkerNestedTwoD, NestedTranslationsCachedInTheSharedTlb) {
  Machine m;
  Translator t(m.setup(Mode::kBaseVirtualized, /*nested_in_tlb=*/true), m.guest, &m.nested, nullptr,
               nullptr);
  t.translate(Gva{kDataGva});
  EXPECT_EQ(t.stats().walk_refs, 24U);
  // The neighbouring page shares all four guest table pages: their gPA -> hPA translations hit
  // the TLB, only the new data gPA needs a nested walk.
  t.translate(Gva{kDataGva + 4 * kKiB});
  EXPECT_EQ(t.stats().walks, 2U);
  EXPECT_EQ(t.stats().walk_refs, 24U + 4 + 4);
  EXPECT_EQ(t.stats().nested_tlb_hits, 4U);
  EXPECT_EQ(t.stats().walk_cycles, 2400U + 800 + 4 * 7);
}

TEST(WalkerVmmDirect, GuestWalkWithAddsForEveryGpa) {
  Machine m;
  Translator t(m.setup(Mode::kVmmDirect), m.guest, &m.nested, nullptr, nullptr);
  EXPECT_EQ(t.translate(Gva{kDataGva + 1}).value(), kDataGpa + kHostOffset + 1);
  EXPECT_EQ(t.stats().walk_refs, 4U);  // 4 memory references and 5 adds
  EXPECT_EQ(t.stats().segment_adds, 5U);
  EXPECT_EQ(t.stats().walk_cycles, 405U);
  EXPECT_EQ(t.stats().walks_in_vmm_segment, 1U);
}

TEST(WalkerGuestDirect, OneAddThenANestedWalk) {
  Machine m;
  Translator t(m.setup(Mode::kGuestDirect), m.guest, &m.nested, nullptr, nullptr);
  EXPECT_EQ(t.translate(Gva{kDataGva + 2}).value(), kDataGpa + kHostOffset + 2);
  EXPECT_EQ(t.stats().walk_refs, 4U);  // 4 memory references and 1 add
  EXPECT_EQ(t.stats().nested_refs, 4U);
  EXPECT_EQ(t.stats().segment_adds, 1U);
  EXPECT_EQ(t.stats().walk_cycles, 401U);
}

TEST(WalkerDualDirect, BothSegmentsTranslateWithoutAWalk) {
  Machine m;
  Translator t(m.setup(Mode::kDualDirect), m.guest, &m.nested, nullptr, nullptr);
  EXPECT_EQ(t.translate(Gva{kDataGva + 3}).value(), kDataGpa + kHostOffset + 3);
  EXPECT_EQ(t.stats().walks, 0U);
  EXPECT_EQ(t.stats().segment_translations, 1U);
  EXPECT_EQ(t.stats().walk_refs, 0U);
}

TEST(WalkerDualDirect, EscapedPageTakesTheNestedWalk) {
  Machine m;
  EscapeFilter filter(256, 4, 3);
  filter.insert_escape(kDataGpa, PageSize::k4K);
  const std::vector<std::uint64_t> escaped{kDataGpa >> 12};
  Translator t(m.setup(Mode::kDualDirect), m.guest, &m.nested, &filter, &escaped);
  t.translate(Gva{kDataGva});
  // Guest segment still applies (1 add), the escaped gPA walks the nested table (4 refs).
  EXPECT_EQ(t.stats().walks, 1U);
  EXPECT_EQ(t.stats().walk_refs, 4U);
  EXPECT_EQ(t.stats().escapes, 1U);
  EXPECT_EQ(t.stats().false_positives, 0U);
  t.translate(Gva{kDataGva + 4 * kKiB});  // the next page is not escaped
  EXPECT_EQ(t.stats().segment_translations, 1U);
}

TEST(WalkerDualDirect, DuringCompactionRunsAsGuestDirect) {
  Machine m;
  Translator t(m.setup(Mode::kDualDirect), m.guest, &m.nested, nullptr, nullptr);
  t.set_vmm_segment_active(false);
  t.translate(Gva{kDataGva});
  EXPECT_EQ(t.stats().walk_refs, 4U);
  EXPECT_EQ(t.stats().segment_adds, 1U);
  t.set_vmm_segment_active(true);  // flushes the TLB
  t.translate(Gva{kDataGva});
  EXPECT_EQ(t.stats().segment_translations, 1U);
}

TEST(WalkerVmmDirect, DuringCompactionRunsAsBaseVirtualized) {
  Machine m;
  Translator t(m.setup(Mode::kVmmDirect), m.guest, &m.nested, nullptr, nullptr);
  t.set_vmm_segment_active(false);
  t.translate(Gva{kDataGva});
  EXPECT_EQ(t.stats().walk_refs, 24U);
}

TEST(WalkerDirectSegment, NativeSegmentNeedsNoWalk) {
  Machine m;
  Translator t(m.setup(Mode::kDirectSegment), m.guest, nullptr, nullptr, nullptr);
  EXPECT_EQ(t.translate(Gva{kDataGva + 5}).value(), kDataGpa + 5);
  EXPECT_EQ(t.stats().walks, 0U);
  EXPECT_EQ(t.stats().segment_translations, 1U);
  // Outside the segment it walks like base native.
  Machine big;
  big.guest.map(Gva{kDataGva + 100 * kMiB}, PageSize::k4K, Gpa{kDataGpa + 100 * kMiB});
  Translator t2(big.setup(Mode::kDirectSegment), big.guest, nullptr, nullptr, nullptr);
  t2.translate(Gva{kDataGva + 100 * kMiB});
  EXPECT_EQ(t2.stats().walk_refs, 4U);
  EXPECT_EQ(t2.stats().walks_in_guest_segment, 0U);
}

}  // namespace
}  // namespace memvirt::translation

namespace memvirt::translation {
namespace {

TEST(WalkerWalkCache, PdeCacheLeavesOnlyThePteReference) {
  Machine m;
  TranslatorSetup s = m.setup(Mode::kBaseNative);
  s.walk_cache = {2, 4, 32};
  Translator t(s, m.guest, nullptr, nullptr, nullptr);
  t.translate(Gva{kDataGva});
  EXPECT_EQ(t.stats().walk_refs, 4U);
  t.translate(Gva{kDataGva + 4 * kKiB});  // same page-table page: PDE cache hit
  EXPECT_EQ(t.stats().walk_refs, 5U);
  EXPECT_EQ(t.stats().walk_cache_hits, 1U);
}

TEST(WalkerWalkCache, BothDimensionsOfANestedWalk) {
  Machine m;
  TranslatorSetup s = m.setup(Mode::kBaseVirtualized);
  s.walk_cache = {2, 4, 32};
  Translator t(s, m.guest, &m.nested, nullptr, nullptr);
  t.translate(Gva{kDataGva});
  // Cold: the root's nested walk reads 4 entries and fills the nested caches; the other three
  // guest table pages lie in the same 2 MiB of guest memory, so their nested walks hit the
  // nested PDE cache (1 reference each); the data gPA (1 GiB) hits only the PML4E cache (3).
  // Guest entries: 4.
  EXPECT_EQ(t.stats().walk_refs, (4U + 1) + (1 + 1) + (1 + 1) + (1 + 1) + 3);
  t.translate(Gva{kDataGva + 4 * kKiB});
  // Guest PDE cache hit: one guest entry, its table page's nested walk hits the nested PDE
  // cache, and so does the data gPA's.
  EXPECT_EQ(t.stats().walk_refs, 14U + 1 + 1 + 1);
}

}  // namespace
}  // namespace memvirt::translation
