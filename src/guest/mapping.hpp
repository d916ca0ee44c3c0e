// What each page of the guest's memory objects holds, and who owns each guest frame.
//
// A mapping is an object with pages: a process's anonymous region (its page table entries) or
// a file (its page cache index). Every page of a mapping has a slot, a 32-bit entry:
//   none    the page was never populated (anonymous) or is not cached and left no shadow
//   frame   resident in guest frame `gfn`
//   swap    an anonymous page in swap slot `payload`
//   shadow  a file page evicted by reclaim when the LRU's eviction clock read `payload`
//           (workingset.c's shadow entry)
// Slots are handed out in chunks of 512, each chunk belonging to one mapping, so a slot id
// names (mapping, page) and serves as the reverse map: the frame table holds the slot id of
// each owned frame, the way struct page holds mapping and index.
//
// Contract: owner(g) == s exactly when entry(s) is frame g; release() empties a mapping's
// entries and their reverse map, and its chunks go back for reuse.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/types.hpp"
#include "guest/run_array.hpp"

namespace memvirt {

enum class SlotKind : std::uint8_t { kNone = 0, kFrame = 1, kSwap = 2, kShadow = 3 };

class SlotEntry {
 public:
  static constexpr std::uint32_t kPayloadBits = 30;
  static constexpr std::uint32_t kPayloadMask = (1U << kPayloadBits) - 1;
  constexpr SlotEntry() = default;
  constexpr explicit SlotEntry(std::uint32_t raw) : raw_(raw) {}
  static constexpr SlotEntry make(SlotKind k, std::uint32_t payload) {
    return SlotEntry{(static_cast<std::uint32_t>(k) << kPayloadBits) | (payload & kPayloadMask)};
  }
  static constexpr SlotEntry frame(Gfn g) { return make(SlotKind::kFrame, g.value()); }
  [[nodiscard]] constexpr SlotKind kind() const {
    return static_cast<SlotKind>(raw_ >> kPayloadBits);
  }
  [[nodiscard]] constexpr std::uint32_t payload() const { return raw_ & kPayloadMask; }
  [[nodiscard]] constexpr Gfn gfn() const { return Gfn{payload()}; }
  [[nodiscard]] constexpr std::uint32_t raw() const { return raw_; }

 private:
  std::uint32_t raw_ = 0;
};

struct MappingIdTag {};
using MappingId = StrongInt<MappingIdTag, std::uint32_t>;
struct SlotIdTag {};
using SlotId = StrongInt<SlotIdTag, std::uint32_t>;

enum class MappingKind : std::uint8_t { kAnon, kFile };

struct MappingOwner {
  MappingId mapping;
  std::uint64_t page = 0;  // page index within the mapping
};

class SlotSpace {
 public:
  explicit SlotSpace(std::uint32_t guest_pages);

  // A new mapping of `kind`; `owner` is the pid (anon) or the file's index (file).
  MappingId create(MappingKind kind, std::uint32_t owner);
  [[nodiscard]] MappingKind kind(MappingId m) const { return mappings_[m.value()].kind; }
  [[nodiscard]] std::uint32_t owner_of_mapping(MappingId m) const {
    return mappings_[m.value()].owner;
  }
  [[nodiscard]] SlotEntry entry(MappingId m, std::uint64_t page) const;
  // Sets the entry of a page (allocating its slot chunk); a frame entry records the owner.
  void set(MappingId m, std::uint64_t page, SlotEntry e);
  // The slot of a page, if its chunk exists.
  [[nodiscard]] std::optional<SlotId> find_slot(MappingId m, std::uint64_t page) const;
  // Who owns frame g (the reverse map); nullopt for a frame no mapping holds.
  [[nodiscard]] std::optional<MappingOwner> owner(Gfn g) const;
  // Empties every entry of the mapping, the reverse map of its frames included (the caller
  // frees the frames), and retires it.
  void release(MappingId m);
  // Pages of the mapping whose chunks exist, as a range to walk: [0, extent_pages).
  [[nodiscard]] std::uint64_t extent_pages(MappingId m) const {
    return static_cast<std::uint64_t>(mappings_[m.value()].chunks.size()) << RunChunk::kShift;
  }
  [[nodiscard]] std::uint64_t memory_bytes() const;

 private:
  struct Mapping {
    MappingKind kind = MappingKind::kAnon;
    std::uint32_t owner = 0;
    bool live = false;
    std::vector<std::uint32_t> chunks;  // by page / 512: chunk number, 0 = none
  };
  struct ChunkOwner {
    std::uint32_t mapping = 0;
    std::uint32_t block = 0;  // page / 512 within the mapping
  };
  std::uint32_t chunk_for(MappingId m, std::uint64_t page);

  std::vector<Mapping> mappings_;
  std::vector<std::uint32_t> free_mappings_;
  std::vector<ChunkOwner> chunk_owner_;  // chunk 0 is never used, so slot 0 means none
  std::vector<std::uint32_t> free_chunks_;
  RunArray entries_;  // by slot id
  RunArray owners_;   // by gfn: slot id
};

}  // namespace memvirt
