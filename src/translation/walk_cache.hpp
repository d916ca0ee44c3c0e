// Page-walk caches (Intel's paging-structure caches, SDM vol. 3 section 4.10.3): small fully
// associative caches of upper-level entries. The PDE cache, keyed by address bits 47:21, gives
// the page-table page, so a walk needs only the PTE reference; the PDPTE cache (bits 47:30)
// leaves two references; the PML4E cache (bits 47:39) three. The longest match wins. One
// instance serves one dimension of a walk (guest/native virtual, or guest physical).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "translation/page_table.hpp"
#include "translation/set_assoc.hpp"

namespace memvirt::translation {

struct WalkCacheConfig {
  std::uint32_t pml4e = 0;  // entries; 0 = none
  std::uint32_t pdpte = 0;
  std::uint32_t pde = 0;
};

class WalkCache {
 public:
  explicit WalkCache(const WalkCacheConfig& c) {
    const std::uint32_t sizes[3] = {c.pde, c.pdpte, c.pml4e};  // index = radix level - 1
    for (unsigned i = 0; i < 3; ++i) {
      if (sizes[i] > 0) levels_[i].emplace(sizes[i], sizes[i]);
    }
  }
  [[nodiscard]] bool enabled() const { return levels_[0] || levels_[1] || levels_[2]; }

  // Walks `table` for `in`, starting below the longest cached prefix, and caches the upper
  // entries the walk read.
  template <typename In, typename Out>
  typename RadixPageTable<In, Out>::Walk walk(const RadixPageTable<In, Out>& table, In in) {
    typename RadixPageTable<In, Out>::Walk w;
    bool hit = false;
    for (unsigned i = 0; i < 3 && !hit; ++i) {  // PDE first: the longest match
      std::uint64_t node = 0;
      if (levels_[i] && levels_[i]->lookup(key(in.value(), i + 1), &node)) {
        ++hits_;
        hit = true;
        w = table.walk_from(in, static_cast<int>(i), static_cast<std::uint32_t>(node));
      }
    }
    if (!hit) w = table.walk(in);
    // Every entry read but the last pointed to a table page (the last is the leaf or absent).
    for (unsigned step = 0; step + 1 < w.refs; ++step) {
      const auto level = static_cast<unsigned>(w.first_level - static_cast<int>(step));
      if (auto& cache = levels_[level - 1]) cache->insert(key(in.value(), level), w.child[step]);
    }
    return w;
  }
  [[nodiscard]] std::uint64_t hits() const { return hits_; }
  void clear() {
    for (auto& l : levels_) {
      if (l) l->clear();
    }
  }

 private:
  // The address bits above the part an entry of `level` maps.
  static std::uint64_t key(std::uint64_t a, unsigned level) { return a >> (12U + 9U * level); }
  std::array<std::optional<SetAssoc>, 3> levels_;
  std::uint64_t hits_ = 0;
};

}  // namespace memvirt::translation
