// The MMU of one configuration: TLB hierarchy, segment registers, escape filter and page walker
// for one of the seed's six modes, with the page-table lines served by a cache model. Each
// translate() follows the steps of the seed's Table I and counts what it did.
//
//   mode              gVA -> gPA                     gPA -> hPA
//   base_native       walk (gVA is VA, gPA is PA)    -
//   direct_segment    segment, else walk             -
//   base_virtualized  2D walk: each guest entry address and the final gPA walk the nested table
//   dual_direct       guest segment, else walk       VMM segment, else nested walk
//   vmm_direct        walk                           VMM segment, else nested walk
//   guest_direct      guest segment, else walk       nested walk
//
// Gaps: a gPA in the VMM segment whose page hits the escape filter takes the nested walk.
// Native modes and direct segments on an L1 miss in both segments (Table I, "Both") insert an
// L1 entry without looking up the L2 TLB.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "translation/address.hpp"
#include "translation/cache.hpp"
#include "translation/escape_filter.hpp"
#include "translation/page_table.hpp"
#include "translation/tlb.hpp"
#include "translation/walk_cache.hpp"

namespace memvirt::translation {

enum class Mode : std::uint8_t {
  kBaseNative,
  kDirectSegment,
  kBaseVirtualized,
  kDualDirect,
  kVmmDirect,
  kGuestDirect,
};
inline constexpr std::array<std::string_view, 6> kModeNames{"base_native",      "direct_segment",
                                                            "base_virtualized", "dual_direct",
                                                            "vmm_direct",       "guest_direct"};
constexpr bool is_virtualized(Mode m) {
  return m != Mode::kBaseNative && m != Mode::kDirectSegment;
}

struct WalkCosts {
  std::uint32_t segment_add_cycles = 1;     // one add of an offset
  std::uint32_t nested_tlb_hit_cycles = 7;  // a gPA -> hPA translation found in the TLB
};

struct TranslatorStats {
  std::uint64_t references = 0;
  std::uint64_t l1_misses = 0;
  std::uint64_t l2_hits = 0;
  std::uint64_t segment_translations = 0;  // L1 misses resolved by segments with no L2 lookup
  std::uint64_t walks = 0;                 // L2 misses: the page-walk state machine ran
  std::uint64_t walk_refs = 0;             // memory references made by walks
  std::uint64_t walk_cycles = 0;
  std::uint64_t guest_refs = 0;   // of walk_refs: guest (or native) page-table entries
  std::uint64_t nested_refs = 0;  // of walk_refs: nested page-table entries
  std::uint64_t nested_tlb_hits = 0;
  std::uint64_t walk_cache_hits = 0;  // walks started below the root thanks to a walk cache
  std::uint64_t segment_adds = 0;
  std::uint64_t walks_in_guest_segment = 0;  // walks whose gVA lies in the guest segment range
  // walks whose data gPA lies in the VMM segment, unescaped; and those also in the guest one
  std::uint64_t walks_in_vmm_segment = 0;
  std::uint64_t walks_in_both_segments = 0;
  std::uint64_t escapes = 0;                      // filter hits on escaped pages
  std::uint64_t false_positives = 0;              // filter hits on other pages
  std::uint64_t data_cycles = 0;                  // latency of the data references themselves
  std::array<std::uint64_t, 25> walks_by_refs{};  // walks with n memory references
};

struct TranslatorSetup {
  Mode mode = Mode::kBaseNative;
  TlbConfig tlb;
  CacheConfig cache;
  WalkCosts costs;
  WalkCacheConfig walk_cache;  // page-walk caches, one per walk dimension (default: none)
  bool nested_in_tlb = true;   // gPA -> hPA translations cached in the shared TLB
  bool model_data = true;      // data references go through the cache model too
  GuestSegment guest_segment;  // ranges always set: native runs use them to classify misses
  VmmSegment vmm_segment;
};

class Translator {
 public:
  // The tables, filter and escaped list are borrowed and must outlive the translator. nested
  // may be null for native modes; filter may be null (no escapes); escaped lists the escaped
  // guest page numbers, sorted.
  Translator(const TranslatorSetup& setup, const GuestPageTable& guest,
             const NestedPageTable* nested, const EscapeFilter* filter,
             const std::vector<std::uint64_t>* escaped);

  // Translates one data reference; returns the host-physical (native: physical) address.
  Hpa translate(Gva va);

  // While the host compacts memory the VMM segment does not exist yet (seed: Dual Direct runs
  // as Guest Direct and VMM Direct as base virtualized). Changing it flushes the TLB.
  void set_vmm_segment_active(bool active);
  [[nodiscard]] bool vmm_segment_active() const { return vmm_active_; }
  [[nodiscard]] const TranslatorStats& stats() const { return stats_; }
  // Zeroes the counters (after a warm-up); TLB and cache contents stay.
  void reset_stats() { stats_ = TranslatorStats{}; }
  [[nodiscard]] Mode mode() const { return setup_.mode; }

 private:
  GuestPageTable::Walk guest_walk(Gva va);
  Hpa walk_native(Gva va, PageSize* size, std::uint32_t* refs, std::uint64_t* cycles);
  Hpa walk_virtualized(Gva va, PageSize* size, std::uint32_t* refs, std::uint64_t* cycles);
  // gPA -> hPA during a walk: VMM segment, shared TLB, or nested walk. *size receives the
  // size of the host mapping (1 GiB for the segment, which never splinters).
  Hpa translate_gpa(Gpa gpa, PageSize span, PageSize* size, std::uint32_t* refs,
                    std::uint64_t* cycles);
  // count: record escapes and false positives (once per walk, not in the pre-L2 check).
  // span: the page size the translation will be cached at; any escape inside it counts.
  [[nodiscard]] bool in_vmm_segment_unescaped(Gpa gpa, bool count, PageSize span);
  [[nodiscard]] bool is_escaped(Gpa gpa, PageSize span) const;

  TranslatorSetup setup_;
  TlbHierarchy tlb_;
  CacheHierarchy cache_;
  WalkCache guest_walk_cache_;   // keyed by gVA (native: VA)
  WalkCache nested_walk_cache_;  // keyed by gPA
  const GuestPageTable& guest_;
  const NestedPageTable* nested_;
  const EscapeFilter* filter_;
  const std::vector<std::uint64_t>* escaped_;
  // The last page translated through the L1 TLB. Its entry is the most recently used of its
  // set, so a repeat hit changes no replacement state and can skip the lookup; any TLB fill
  // or flush forgets it.
  std::uint64_t last_vpn_ = ~std::uint64_t{0};
  std::uint64_t last_frame_ = 0;
  bool guest_active_ = false;
  bool vmm_active_ = false;
  TranslatorStats stats_;
};

}  // namespace memvirt::translation
