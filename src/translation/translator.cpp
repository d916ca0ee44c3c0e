#include "translation/translator.hpp"

#include <algorithm>
#include <stdexcept>

namespace memvirt::translation {

namespace {
constexpr std::uint64_t offset_in(std::uint64_t a, PageSize s) {
  return a & (page_bytes(s) - 1);
}
constexpr std::uint64_t base_of(std::uint64_t a, PageSize s) {
  return a & ~(page_bytes(s) - 1);
}
}  // namespace

Translator::Translator(const TranslatorSetup& setup, const GuestPageTable& guest,
                       const NestedPageTable* nested, const EscapeFilter* filter,
                       const std::vector<std::uint64_t>* escaped)
    : setup_(setup),
      tlb_(setup.tlb),
      cache_(setup.cache),
      guest_walk_cache_(setup.walk_cache),
      nested_walk_cache_(setup.walk_cache),
      guest_(guest),
      nested_(nested),
      filter_(filter),
      escaped_(escaped) {
  const Mode m = setup.mode;
  if (is_virtualized(m) && nested == nullptr) {
    throw std::invalid_argument("translator: virtualized mode without a nested table");
  }
  guest_active_ =
      (m == Mode::kDirectSegment || m == Mode::kDualDirect || m == Mode::kGuestDirect) &&
      setup.guest_segment.enabled();
  vmm_active_ = (m == Mode::kDualDirect || m == Mode::kVmmDirect) && setup.vmm_segment.enabled();
}

void Translator::set_vmm_segment_active(bool active) {
  const bool allowed = (setup_.mode == Mode::kDualDirect || setup_.mode == Mode::kVmmDirect) &&
                       setup_.vmm_segment.enabled();
  const bool next = active && allowed;
  if (next != vmm_active_) {
    tlb_.flush();
    last_vpn_ = ~std::uint64_t{0};
  }
  vmm_active_ = next;
}

bool Translator::is_escaped(Gpa gpa, PageSize span) const {
  if (escaped_ == nullptr) return false;
  const std::uint64_t first = (gpa.value() & ~(page_bytes(span) - 1)) >> 12;
  const auto it = std::lower_bound(escaped_->begin(), escaped_->end(), first);
  return it != escaped_->end() && *it < first + (page_bytes(span) >> 12);
}

bool Translator::in_vmm_segment_unescaped(Gpa gpa, bool count, PageSize span) {
  if (!setup_.vmm_segment.contains(gpa)) return false;
  if (filter_ == nullptr || !filter_->maybe_escapes(gpa.value(), span)) return true;
  if (!count) return false;
  if (is_escaped(gpa, span)) {
    ++stats_.escapes;
  } else {
    ++stats_.false_positives;
  }
  return false;
}

Hpa Translator::translate(Gva va) {
  ++stats_.references;
  TlbHit hit;
  Hpa pa;
  const std::uint64_t vpn = va.value() >> 12;
  PageSize entry_size = PageSize::k4K;
  if (vpn == last_vpn_) {
    pa = Hpa{last_frame_ | (va.value() & 0xFFF)};
  } else if (tlb_.lookup_l1(va.value(), TlbSpace::kVirtual, &hit)) {
    pa = Hpa{hit.out_base + offset_in(va.value(), hit.size)};
    entry_size = hit.size;
  } else {
    ++stats_.l1_misses;
    bool done = false;
    // Table I, "Both": an L1 miss inside both segments (or inside the native direct segment)
    // computes the address with adds and fills L1 without an L2 lookup.
    if (guest_active_ && setup_.guest_segment.contains(va)) {
      const Gpa gpa = setup_.guest_segment.translate(va);
      if (setup_.mode == Mode::kDirectSegment) {
        pa = Hpa{gpa.value()};
        done = true;
      } else if (vmm_active_ && in_vmm_segment_unescaped(gpa, false, PageSize::k4K)) {
        pa = setup_.vmm_segment.translate(gpa);
        done = true;
      }
      if (done) {
        ++stats_.segment_translations;
        tlb_.insert_l1(va.value(), TlbSpace::kVirtual, PageSize::k4K,
                       base_of(pa.value(), PageSize::k4K));
      }
    }
    if (!done) {
      if (tlb_.lookup_l2(va.value(), TlbSpace::kVirtual, &hit)) {
        ++stats_.l2_hits;
        pa = Hpa{hit.out_base + offset_in(va.value(), hit.size)};
        entry_size = hit.size;
      } else {
        ++stats_.walks;
        PageSize size = PageSize::k4K;
        std::uint32_t refs = 0;
        std::uint64_t cycles = 0;
        pa = is_virtualized(setup_.mode) ? walk_virtualized(va, &size, &refs, &cycles)
                                         : walk_native(va, &size, &refs, &cycles);
        stats_.walk_refs += refs;
        stats_.walk_cycles += cycles;
        ++stats_.walks_by_refs[std::min<std::size_t>(refs, stats_.walks_by_refs.size() - 1)];
        tlb_.insert(va.value(), TlbSpace::kVirtual, size, base_of(pa.value(), size));
        entry_size = size;
      }
    }
  }
  // Every path ends with this page's entry most recently used in L1 (the walk and the L2 hit
  // fill it last; nested fills come before).
  last_vpn_ = tlb_.l1_holds(entry_size) ? vpn : ~std::uint64_t{0};
  last_frame_ = pa.value() & ~std::uint64_t{0xFFF};
  if (setup_.model_data) stats_.data_cycles += cache_.access(pa.value());
  return pa;
}

GuestPageTable::Walk Translator::guest_walk(Gva va) {
  const std::uint64_t before = guest_walk_cache_.hits();
  const GuestPageTable::Walk w = guest_walk_cache_.walk(guest_, va);
  stats_.walk_cache_hits += guest_walk_cache_.hits() - before;
  return w;
}

Hpa Translator::walk_native(Gva va, PageSize* size, std::uint32_t* refs, std::uint64_t* cycles) {
  if (setup_.guest_segment.contains(va)) ++stats_.walks_in_guest_segment;
  const GuestPageTable::Walk w = guest_walk(va);
  for (unsigned i = 0; i < w.refs; ++i) *cycles += cache_.access(w.entry[i].value());
  *refs += w.refs;
  stats_.guest_refs += w.refs;
  if (!w.present) throw std::logic_error("translator: reference to an unmapped guest page");
  *size = w.size;
  const Gpa gpa{w.page_base.value() + offset_in(va.value(), w.size)};
  // Classification only: would this miss fall in the VMM segment of a virtualized run?
  if (setup_.vmm_segment.contains(gpa) &&
      (filter_ == nullptr || !filter_->maybe_escapes(gpa.value(), w.size))) {
    ++stats_.walks_in_vmm_segment;
    if (setup_.guest_segment.contains(va)) ++stats_.walks_in_both_segments;
  }
  return Hpa{gpa.value()};
}

Hpa Translator::translate_gpa(Gpa gpa, PageSize span, PageSize* size, std::uint32_t* refs,
                              std::uint64_t* cycles) {
  if (vmm_active_ && in_vmm_segment_unescaped(gpa, true, span)) {
    ++stats_.segment_adds;
    *cycles += setup_.costs.segment_add_cycles;
    *size = PageSize::k1G;
    return setup_.vmm_segment.translate(gpa);
  }
  TlbHit hit;
  if (setup_.nested_in_tlb && (tlb_.lookup_l1(gpa.value(), TlbSpace::kGuestPhysical, &hit) ||
                               tlb_.lookup_l2(gpa.value(), TlbSpace::kGuestPhysical, &hit))) {
    ++stats_.nested_tlb_hits;
    *cycles += setup_.costs.nested_tlb_hit_cycles;
    *size = hit.size;
    return Hpa{hit.out_base + offset_in(gpa.value(), hit.size)};
  }
  const std::uint64_t before = nested_walk_cache_.hits();
  const NestedPageTable::Walk w = nested_walk_cache_.walk(*nested_, gpa);
  stats_.walk_cache_hits += nested_walk_cache_.hits() - before;
  for (unsigned i = 0; i < w.refs; ++i) *cycles += cache_.access(w.entry[i].value());
  *refs += w.refs;
  stats_.nested_refs += w.refs;
  if (!w.present) throw std::logic_error("translator: guest page not backed by the host");
  *size = w.size;
  if (setup_.nested_in_tlb) {
    tlb_.insert(gpa.value(), TlbSpace::kGuestPhysical, w.size, w.page_base.value());
  }
  return Hpa{w.page_base.value() + offset_in(gpa.value(), w.size)};
}

Hpa Translator::walk_virtualized(Gva va, PageSize* size, std::uint32_t* refs,
                                 std::uint64_t* cycles) {
  Gpa gpa;
  PageSize guest_size = PageSize::k1G;  // a segment never limits the entry size
  if (setup_.guest_segment.contains(va)) ++stats_.walks_in_guest_segment;
  if (guest_active_ && setup_.guest_segment.contains(va)) {
    ++stats_.segment_adds;
    *cycles += setup_.costs.segment_add_cycles;
    gpa = setup_.guest_segment.translate(va);
    // Dual Direct reaches here only for escapes and false positives: like its segment hits,
    // cache the result as a 4 KiB entry so it never covers an escaped page. Guest Direct lets
    // the host page size decide.
    if (vmm_active_ && setup_.vmm_segment.contains(gpa)) guest_size = PageSize::k4K;
  } else {
    const GuestPageTable::Walk w = guest_walk(va);
    for (unsigned i = 0; i < w.refs; ++i) {
      PageSize unused;
      const Hpa entry = translate_gpa(w.entry[i], PageSize::k4K, &unused, refs, cycles);
      *cycles += cache_.access(entry.value());
    }
    *refs += w.refs;
    stats_.guest_refs += w.refs;
    if (!w.present) throw std::logic_error("translator: reference to an unmapped guest page");
    guest_size = w.size;
    gpa = Gpa{w.page_base.value() + offset_in(va.value(), w.size)};
  }
  const bool counted_in_vmm = setup_.vmm_segment.contains(gpa);
  PageSize host_size;
  const Hpa hpa = translate_gpa(gpa, guest_size, &host_size, refs, cycles);
  // Modes with a VMM segment count what it served; the others classify by range.
  const bool has_vmm = setup_.mode == Mode::kDualDirect || setup_.mode == Mode::kVmmDirect;
  if (counted_in_vmm && (vmm_active_ || !has_vmm) &&
      (filter_ == nullptr || !filter_->maybe_escapes(gpa.value(), guest_size))) {
    ++stats_.walks_in_vmm_segment;
    if (setup_.guest_segment.contains(va)) ++stats_.walks_in_both_segments;
  }
  *size = smaller(guest_size, host_size);
  return hpa;
}

}  // namespace memvirt::translation
