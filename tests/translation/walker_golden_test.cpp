// Golden counts: every mode's counters and translated addresses for a fixed seed, layout and
// reference stream, so a change meant only to make the walker faster is seen to change nothing.
// The values were recorded from the walker before its speed work; a deliberate change of the
// model must update them and say why.
#include <gtest/gtest.h>

#include <memory>

#include "core/rng.hpp"
#include "translation/guest_layout.hpp"
#include "translation/host_layout.hpp"
#include "translation/translator.hpp"

namespace memvirt::translation {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;

struct Digest {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  void add(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 0x100000001B3ULL;
    }
  }
};

std::uint64_t digest_of(const TranslatorStats& s, std::uint64_t addresses) {
  Digest d;
  for (std::uint64_t v :
       {s.references, s.l1_misses, s.l2_hits, s.segment_translations, s.walks, s.walk_refs,
        s.walk_cycles, s.guest_refs, s.nested_refs, s.nested_tlb_hits, s.walk_cache_hits,
        s.segment_adds, s.walks_in_guest_segment, s.walks_in_vmm_segment, s.walks_in_both_segments,
        s.escapes, s.false_positives, s.data_cycles}) {
    d.add(v);
  }
  for (std::uint64_t v : s.walks_by_refs) d.add(v);
  d.add(addresses);
  return d.h;
}

// Runs `mode` over a 96 MiB heap: random references, sequential runs, a hot set, and the VMM
// segment switched off for a stretch in the middle. Returns the digest; *walks the walk count.
std::uint64_t run(Mode mode, PageSize guest_pages, PageSize host_pages, std::uint64_t* walks) {
  GuestLayoutConfig gc;
  gc.memory = 2048 * kMiB;
  gc.page_size = guest_pages;
  gc.self_ballooning = true;
  gc.hot_unplug_io_gap = true;
  gc.fragmentation = 0.05;
  gc.seed = 11;
  const std::vector<Region> regions{{"heap", Gva{HeapLayout::kHeapBase}, 96 * kMiB}};
  const GuestLayout g = build_guest_layout(regions, gc);
  HostLayoutConfig hc;
  hc.page_size = host_pages;
  hc.escaped_pages = 24;
  hc.filter_bits = 64;  // small, so false positives happen too
  hc.seed = 11;
  const HostLayout h = build_host_layout(g, hc);
  TranslatorSetup s;
  s.mode = mode;
  s.cache.levels = {{32 << 10, 8, 4}, {256 << 10, 8, 12}, {2 << 20, 16, 30}};
  s.cache.memory_cycles = 132;
  s.walk_cache = {2, 4, 32};
  s.guest_segment = g.segment;
  s.vmm_segment = h.segment;
  Translator t(s, *g.table, h.table.get(), h.filter.get(), &h.escaped);
  Rng rng(5, "test.walker_golden");
  std::uint64_t addresses = 0;
  std::uint64_t seq = HeapLayout::kHeapBase;
  for (int i = 0; i < 300'000; ++i) {
    if (i == 100'000) t.set_vmm_segment_active(false);
    if (i == 150'000) t.set_vmm_segment_active(true);
    if (i == 20'000) t.reset_stats();
    std::uint64_t off = 0;
    switch (rng.below(4)) {
      case 0:
        off = rng.below(96 * kMiB);
        break;
      case 1:
        off = rng.below(256 * 4096);  // hot 1 MiB
        break;
      default:
        seq = HeapLayout::kHeapBase + ((seq - HeapLayout::kHeapBase + 64) % (96 * kMiB));
        off = seq - HeapLayout::kHeapBase;
    }
    addresses = addresses * 31 + t.translate(Gva{HeapLayout::kHeapBase + (off & ~7ULL)}).value();
  }
  *walks = t.stats().walks;
  return digest_of(t.stats(), addresses);
}

struct Golden {
  Mode mode;
  PageSize guest, host;
  std::uint64_t walks;
  std::uint64_t digest;
};

TEST(WalkerGolden, CountsAndAddressesForAFixedSeed) {
  const Golden golden[] = {
      {Mode::kBaseNative, PageSize::k4K, PageSize::k4K, 110265, 0x8b1855b6b215642ULL},
      {Mode::kDirectSegment, PageSize::k4K, PageSize::k4K, 0, 0xccfe925556540151ULL},
      {Mode::kBaseVirtualized, PageSize::k4K, PageSize::k4K, 110265, 0xfb81a41438cfbf67ULL},
      {Mode::kDualDirect, PageSize::k4K, PageSize::k4K, 40012, 0x3ba27daccd958efdULL},
      {Mode::kVmmDirect, PageSize::k4K, PageSize::k4K, 110339, 0x9c4ff5fab53a8536ULL},
      {Mode::kGuestDirect, PageSize::k4K, PageSize::k4K, 110265, 0x134fbca3c489dd78ULL},
      {Mode::kBaseNative, PageSize::k2M, PageSize::k2M, 46563, 0xf754d08b4d6bfacaULL},
      {Mode::kBaseVirtualized, PageSize::k2M, PageSize::k2M, 74092, 0xf0ffccca56387338ULL},
      {Mode::kBaseVirtualized, PageSize::k4K, PageSize::k2M, 110265, 0x27c42cd69ecc8e03ULL},
      {Mode::kDualDirect, PageSize::k2M, PageSize::k2M, 68123, 0xb67f9655eee37449ULL},
      {Mode::kVmmDirect, PageSize::k2M, PageSize::k4K, 97813, 0xdb2938b9ffe3b294ULL},
      {Mode::kGuestDirect, PageSize::k4K, PageSize::k2M, 46453, 0x6dce2aff72304844ULL},
  };
  for (const Golden& want : golden) {
    std::uint64_t walks = 0;
    const std::uint64_t digest = run(want.mode, want.guest, want.host, &walks);
    EXPECT_EQ(walks, want.walks) << kModeNames[static_cast<std::size_t>(want.mode)] << " "
                                 << page_size_name(want.guest) << "+" << page_size_name(want.host);
    EXPECT_EQ(digest, want.digest) << kModeNames[static_cast<std::size_t>(want.mode)] << " "
                                   << page_size_name(want.guest) << "+" << page_size_name(want.host)
                                   << ": {" << walks << ", 0x" << std::hex << digest << "}";
  }
}

}  // namespace
}  // namespace memvirt::translation
