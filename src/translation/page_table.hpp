// An x86-64 4-level radix page table that exists: 4 KiB table pages of 512 eight-byte entries,
// each table page at a real address of the output space (guest page tables live in guest
// physical memory, nested tables in host memory), leaves at level 0 (4 KiB), 1 (2 MiB) or
// 2 (1 GiB). A walk reports the address of every entry it reads, which is what a 2D walk must
// translate and what the cache model is charged for.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <vector>

#include "translation/address.hpp"

namespace memvirt::translation {

template <typename In, typename Out>
class RadixPageTable {
 public:
  static constexpr unsigned kLevels = 4;
  static constexpr unsigned kEntries = 512;

  struct Walk {
    std::array<Out, kLevels> entry{};  // address of the entry read at each step, root first
    unsigned refs = 0;                 // entries read
    bool present = false;
    PageSize size = PageSize::k4K;
    Out page_base{};  // output address of the start of the leaf page
    // Table page reached below each step (valid for steps whose entry is not a leaf); what a
    // page-walk cache keeps.
    std::array<std::uint32_t, kLevels> child{};
    int first_level = kLevels - 1;  // radix level of entry[0]
  };

  // alloc_table_page returns the output-space address of a fresh 4 KiB table page; the table
  // calls it once for the root and once for each table page it adds.
  explicit RadixPageTable(std::function<Out()> alloc_table_page)
      : alloc_(std::move(alloc_table_page)) {
    new_node();
  }

  // Maps the page of `size` at `in` (aligned) to `out` (aligned). Remapping a present leaf
  // replaces it; mapping over a range split at a different size is a logic error.
  void map(In in, PageSize size, Out out) {
    const std::uint64_t mask = page_bytes(size) - 1;
    if ((in.value() & mask) != 0 || (out.value() & mask) != 0) {
      throw std::logic_error("page table: unaligned mapping");
    }
    std::uint32_t node = 0;
    for (int level = kLevels - 1; level > static_cast<int>(size); --level) {
      std::uint64_t& e = entries_[node * kEntries + index(in.value(), level)];
      if (e == 0) {
        const std::uint32_t child = new_node();
        // entries_ may have grown: recompute the reference.
        entries_[node * kEntries + index(in.value(), level)] =
            (static_cast<std::uint64_t>(child) << 2) | kPresent;
        node = child;
      } else {
        if ((e & kLeaf) != 0) throw std::logic_error("page table: mapping inside a large page");
        node = static_cast<std::uint32_t>(e >> 2);
      }
    }
    std::uint64_t& leaf = entries_[node * kEntries + index(in.value(), static_cast<int>(size))];
    if (leaf != 0 && (leaf & kLeaf) == 0) {
      throw std::logic_error("page table: large page over a table");
    }
    leaf = out.value() | kPresent | kLeaf;
  }

  [[nodiscard]] Walk walk(In in) const { return walk_from(in, kLevels - 1, 0); }

  // A walk that starts at table page `node` of radix level `level` (3 = the root's level), as
  // after a page-walk-cache hit.
  [[nodiscard]] Walk walk_from(In in, int start_level, std::uint32_t start_node) const {
    Walk w;
    w.first_level = start_level;
    std::uint32_t node = start_node;
    for (int level = start_level; level >= 0; --level) {
      const unsigned i = index(in.value(), level);
      w.entry[w.refs++] = Out{node_address_[node] + 8ULL * i};
      const std::uint64_t e = entries_[node * kEntries + i];
      if (e == 0) return w;
      if ((e & kLeaf) != 0) {
        w.present = true;
        w.size = static_cast<PageSize>(level);
        w.page_base = Out{e & ~std::uint64_t{kFlagMask}};
        return w;
      }
      node = static_cast<std::uint32_t>(e >> 2);
      w.child[w.refs - 1] = node;
    }
    return w;
  }

  [[nodiscard]] Out root() const { return Out{node_address_[0]}; }
  [[nodiscard]] std::size_t table_pages() const { return node_address_.size(); }

 private:
  static constexpr std::uint64_t kPresent = 1, kLeaf = 2, kFlagMask = 0xFFF;
  static unsigned index(std::uint64_t a, int level) {
    return static_cast<unsigned>((a >> (12U + 9U * static_cast<unsigned>(level))) & 511U);
  }
  std::uint32_t new_node() {
    const Out addr = alloc_();
    node_address_.push_back(addr.value());
    entries_.resize(entries_.size() + kEntries, 0);
    return static_cast<std::uint32_t>(node_address_.size() - 1);
  }

  std::function<Out()> alloc_;
  std::vector<std::uint64_t> entries_;
  std::vector<std::uint64_t> node_address_;
};

using GuestPageTable = RadixPageTable<Gva, Gpa>;
using NestedPageTable = RadixPageTable<Gpa, Hpa>;

}  // namespace memvirt::translation
