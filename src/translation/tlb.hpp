// A TLB hierarchy: an L1 array per page size and an L2 array per page size (absent arrays have
// zero entries), each set-associative with LRU replacement. Entries are tagged with the address
// space they translate, so nested translations (gPA -> hPA) can share the same arrays as
// complete ones (gVA -> hPA), as on the seed's Sandy Bridge ("EPT TLB shares the TLB").
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "translation/address.hpp"
#include "translation/set_assoc.hpp"

namespace memvirt::translation {

struct TlbArrayConfig {
  std::uint32_t entries = 0;  // 0 = no array for this page size
  std::uint32_t ways = 1;     // entries == ways: fully associative
};

struct TlbConfig {
  // Seed 004 Table VI (Xeon E5-2430, Sandy Bridge).
  std::array<TlbArrayConfig, kPageSizes> l1{{{64, 4}, {32, 4}, {4, 4}}};
  std::array<TlbArrayConfig, kPageSizes> l2{{{512, 4}, {0, 1}, {0, 1}}};
};

enum class TlbSpace : std::uint8_t { kVirtual = 0, kGuestPhysical = 1 };

struct TlbHit {
  std::uint64_t out_base;  // output address of the start of the page
  PageSize size;
};

class TlbHierarchy {
 public:
  explicit TlbHierarchy(const TlbConfig& config);

  // Probes every L1 array. On a hit the entry becomes most recently used.
  bool lookup_l1(std::uint64_t addr, TlbSpace space, TlbHit* hit);
  // Probes every L2 array; a hit is copied into the L1 array of its size.
  bool lookup_l2(std::uint64_t addr, TlbSpace space, TlbHit* hit);
  // Fills the L1 array of `size` (or the largest smaller one present) and the L2 array of
  // `size` when there is one. out_base is the page's output base.
  void insert(std::uint64_t addr, TlbSpace space, PageSize size, std::uint64_t out_base);
  // Fills only L1 (what the seed's hardware does for a segment translation).
  void insert_l1(std::uint64_t addr, TlbSpace space, PageSize size, std::uint64_t out_base);
  void flush();
  // True when entries of `size` are cached in some L1 array (themselves or splintered).
  [[nodiscard]] bool l1_holds(PageSize size) const { return l1_index_for(size) >= 0; }

  static std::uint64_t key(std::uint64_t addr, TlbSpace space, PageSize size) {
    return ((addr >> page_shift(size)) << 1) | static_cast<std::uint64_t>(space);
  }

 private:
  static std::optional<SetAssoc> make(const TlbArrayConfig& c) {
    if (c.entries == 0) return std::nullopt;
    return SetAssoc(c.entries, c.ways);
  }
  // An entry of a size with no array is stored splintered into the next smaller array.
  [[nodiscard]] int l1_index_for(PageSize size) const;
  std::array<std::optional<SetAssoc>, kPageSizes> l1_;
  std::array<std::optional<SetAssoc>, kPageSizes> l2_;
};

}  // namespace memvirt::translation
