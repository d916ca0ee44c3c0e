// KSM's unstable tree (reclaim/ksm.cpp), held as a flat hash table from a 64-bit key (the
// page's content fingerprint: equal keys stand for equal content) to one page (VM, gfn). A
// lookup replaces the tree walk, whose cost Ksm charges itself. Open addressing with linear
// probing; the table doubles when it would pass 3/4 full and never shrinks. erase() shifts
// the entries after the erased one back, so probe chains stay intact. clear() is O(1): it
// bumps a generation number and slots of older generations count as empty, so KSM empties
// the index at the end of every full scan without writing its slots.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.hpp"
#include "core/types.hpp"
#include "host/host_memory.hpp"

namespace memvirt {

class ContentIndex {
 public:
  struct Page {
    VmId vm;
    Gfn gfn;
  };

  // Returns the page stored under `key`, or stores `page` there and returns nullptr. The
  // pointer is valid until the next find_or_insert() (which may grow the table).
  Page* find_or_insert(std::uint64_t key, Page page) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    Slot* s = probe(key);
    if (s->generation == generation_) return &s->page;
    *s = Slot{key, generation_, page};
    ++size_;
    return nullptr;
  }
  void erase(std::uint64_t key) {
    // Backward-shift deletion keeps probe chains intact.
    if (slots_.empty()) return;
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = splitmix64(key) & mask;
    while (slots_[i].generation == generation_) {
      if (slots_[i].key == key) break;
      i = (i + 1) & mask;
    }
    if (slots_[i].generation != generation_) return;
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask; slots_[j].generation == generation_; j = (j + 1) & mask) {
      const std::size_t home = splitmix64(slots_[j].key) & mask;
      // Move j into the hole if its home is not between the hole and j (cyclically).
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole].generation = 0;
    --size_;
  }
  void clear() {
    ++generation_;
    size_ = 0;
  }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::uint64_t memory_bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    std::uint64_t key = 0;
    std::uint32_t generation = 0;  // live when equal to the table's generation
    Page page{};
  };
  Slot* probe(std::uint64_t key) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = splitmix64(key) & mask;
    while (slots_[i].generation == generation_ && slots_[i].key != key) i = (i + 1) & mask;
    return &slots_[i];
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
    const std::uint32_t live = generation_;
    generation_ = 1;
    size_ = 0;
    for (const Slot& s : old) {
      if (s.generation != live) continue;
      Slot* d = probe(s.key);
      *d = Slot{s.key, generation_, s.page};
      ++size_;
    }
  }
  std::vector<Slot> slots_;
  std::uint32_t generation_ = 1;
  std::size_t size_ = 0;
};

}  // namespace memvirt
