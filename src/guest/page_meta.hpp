// Per-page metadata of the guest kernel model: the small part of Linux's struct page that the
// allocator needs, packed in 32 bits so a 4 GiB guest costs 4 MiB of simulator memory.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/types.hpp"

namespace memvirt {

enum class GuestPageState : std::uint8_t {
  kInUse = 0,     // allocated, or inside a free block without being its head
  kBuddy = 1,     // head of a free block on a buddy free list (PageBuddy)
  kPcp = 2,       // on a per-CPU page list
  kIsolated = 3,  // taken off the free lists by a mechanism (hinting, reporting)
  kOffline = 4,   // given to the host by the balloon
};

// Page flags of an in-use page (its 24 bits are the list node while the page is free): the
// LRU list it is on (lru.hpp) and the bits of Linux's page flags that reclaim reads.
class PageFlags {
 public:
  enum Bit : std::uint32_t {
    kYoung = 1U << 7,        // accessed since reclaim last looked (the PTE accessed bit)
    kReferenced = 1U << 8,   // PG_referenced
    kDirty = 1U << 9,        // PG_dirty
    kWriteback = 1U << 10,   // PG_writeback
    kSwapBacked = 1U << 11,  // anonymous (PG_swapbacked)
    kSwapCache = 1U << 12,   // PG_swapcache: has a swap slot
    kLocked = 1U << 13,      // PG_locked: read I/O in flight, not yet up to date
    kReclaim = 1U << 14,     // PG_reclaim: reclaim wants it freed when writeback ends
    kWorkingset = 1U << 15,  // PG_workingset: activated by a refault
    kMapped = 1U << 16,      // mapped by a process (page_mapped)
    kExec = 1U << 17,        // mapped executable (VM_EXEC): kept active when referenced
  };
  constexpr PageFlags() = default;
  constexpr explicit PageFlags(std::uint32_t raw) : raw_(raw & 0xFFFFFFU) {}
  [[nodiscard]] constexpr std::uint32_t raw() const { return raw_; }
  [[nodiscard]] constexpr unsigned list() const { return raw_ & 7U; }
  constexpr void set_list(unsigned l) { raw_ = (raw_ & ~7U) | (l & 7U); }
  [[nodiscard]] constexpr bool test(Bit b) const { return (raw_ & b) != 0; }
  constexpr void set(Bit b, bool on = true) {
    raw_ = on ? (raw_ | b) : (raw_ & ~static_cast<std::uint32_t>(b));
  }

 private:
  std::uint32_t raw_ = 0;
};

// [state:3][order:4][reported:1][list node, or page flags when in use:24]
class PageMeta {
 public:
  static constexpr std::uint32_t kNoNode = 0;
  static constexpr std::uint32_t kMaxNode = (1U << 24) - 1;

  [[nodiscard]] GuestPageState state() const { return static_cast<GuestPageState>(bits_ & 7); }
  [[nodiscard]] PageOrder order() const { return PageOrder{(bits_ >> 3) & 15}; }
  [[nodiscard]] bool reported() const { return ((bits_ >> 7) & 1) != 0; }
  [[nodiscard]] std::uint32_t node() const { return bits_ >> 8; }

  void set_state(GuestPageState s) { bits_ = (bits_ & ~7U) | static_cast<std::uint32_t>(s); }
  void set_order(PageOrder o) { bits_ = (bits_ & ~(15U << 3)) | (o.value() << 3); }
  void set_reported(bool r) { bits_ = (bits_ & ~(1U << 7)) | (static_cast<std::uint32_t>(r) << 7); }
  void set_node(std::uint32_t n) { bits_ = (bits_ & 0xFFU) | (n << 8); }
  // The page flags of an in-use page share the node's bits.
  [[nodiscard]] PageFlags flags() const { return PageFlags{bits_ >> 8}; }
  void set_flags(PageFlags f) { bits_ = (bits_ & 0xFFU) | (f.raw() << 8); }

 private:
  std::uint32_t bits_ = 0;
};
static_assert(sizeof(PageMeta) == 4);

// The metadata of every guest page, in chunks of one max-order block (1024 pages). A chunk
// that is still one untouched free block keeps only its first page's metadata; the other 1023
// pages of such a block have default metadata, as in Linux, so the chunk's array is only
// allocated when the block is first split. A guest that uses a tenth of its memory costs a
// tenth of the metadata.
class PageMetaTable {
 public:
  static constexpr unsigned kChunkShift = 10;
  static constexpr std::uint32_t kChunkPages = 1U << kChunkShift;

  explicit PageMetaTable(std::uint32_t pages = 0)
      : pages_(pages),
        chunks_((static_cast<std::uint64_t>(pages) + kChunkPages - 1) >> kChunkShift) {}

  [[nodiscard]] PageMeta get(Gfn g) const {
    const Chunk& c = chunks_[g.value() >> kChunkShift];
    if (c.pages) return c.pages[g.value() & (kChunkPages - 1)];
    return (g.value() & (kChunkPages - 1)) == 0 ? c.head : PageMeta{};
  }
  // Mutable access. Allocates the chunk's array unless `g` is the chunk's first page.
  PageMeta& mut(Gfn g) {
    Chunk& c = chunks_[g.value() >> kChunkShift];
    const std::uint32_t i = g.value() & (kChunkPages - 1);
    if (!c.pages) {
      if (i == 0) return c.head;
      c.pages = std::make_unique<PageMeta[]>(kChunkPages);
      c.pages[0] = c.head;
    }
    return c.pages[i];
  }
  [[nodiscard]] std::uint32_t size() const { return pages_; }
  [[nodiscard]] std::uint64_t memory_bytes() const {
    std::uint64_t bytes = chunks_.capacity() * sizeof(Chunk);
    for (const auto& c : chunks_) {
      if (c.pages) bytes += kChunkPages * sizeof(PageMeta);
    }
    return bytes;
  }

 private:
  struct Chunk {
    std::unique_ptr<PageMeta[]> pages;
    PageMeta head;
  };
  std::uint32_t pages_;
  std::vector<Chunk> chunks_;
};

}  // namespace memvirt
