// A set-associative array of keys with LRU replacement, the storage of both TLBs and the
// page-table-line caches. Keys are arbitrary 64-bit values except kEmpty; each entry carries a
// 64-bit payload. Sets need not be a power of two (a 15 MiB 20-way cache has 12288 sets).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace memvirt::translation {

class SetAssoc {
 public:
  static constexpr std::uint64_t kEmpty = std::numeric_limits<std::uint64_t>::max();

  // entries must be a positive multiple of ways.
  SetAssoc(std::uint32_t entries, std::uint32_t ways)
      : ways_(ways),
        sets_(entries / ways),
        mask_((sets_ & (sets_ - 1)) == 0 ? sets_ - 1 : 0),
        ways_storage_(entries),
        payloads_(entries, 0) {}

  // True on a hit (the entry becomes most recently used); *payload receives its payload.
  bool lookup(std::uint64_t key, std::uint64_t* payload) {
    const std::size_t first = set_of(key) * ways_;
    Way* w = &ways_storage_[first];
    for (std::uint32_t i = 0; i < ways_; ++i) {
      if (w[i].key == key) {
        w[i].stamp = ++clock_;
        *payload = payloads_[first + i];
        return true;
      }
    }
    return false;
  }

  // Inserts or refreshes `key`, evicting the least recently used entry of its set. Returns the
  // evicted key (kEmpty if none).
  std::uint64_t insert(std::uint64_t key, std::uint64_t payload) {
    const std::size_t first = set_of(key) * ways_;
    Way* w = &ways_storage_[first];
    std::uint32_t victim = 0;
    for (std::uint32_t i = 0; i < ways_; ++i) {
      if (w[i].key == key) {
        victim = i;
        break;
      }
      if (w[i].stamp < w[victim].stamp) victim = i;
    }
    const std::uint64_t evicted = w[victim].key == key ? kEmpty : w[victim].key;
    w[victim] = Way{key, ++clock_};
    payloads_[first + victim] = payload;
    return evicted;
  }

  void clear() { std::fill(ways_storage_.begin(), ways_storage_.end(), Way{}); }
  [[nodiscard]] bool contains(std::uint64_t key) const {
    const std::size_t first = set_of(key) * ways_;
    for (std::size_t i = first; i < first + ways_; ++i) {
      if (ways_storage_[i].key == key) return true;
    }
    return false;
  }
  [[nodiscard]] std::uint32_t ways() const { return ways_; }
  [[nodiscard]] std::uint32_t sets() const { return sets_; }
  // The set `key` maps to.
  [[nodiscard]] std::size_t set_of(std::uint64_t key) const {
    if (mask_ != 0) return key & mask_;
    if (sets_ == 1) return 0;
    // Sets that are not a power of two (a 15 MiB 20-way cache): a multiplicative hash mapped
    // onto [0, sets) without a division, as sliced last-level caches hash addresses too.
    const std::uint64_t h = (key * 0x9E3779B97F4A7C15ULL) >> 32;
    return static_cast<std::size_t>((h * sets_) >> 32);
  }

 private:
  struct Way {
    std::uint64_t key = kEmpty;
    std::uint64_t stamp = 0;  // last use; 0 = never, so empty ways are victims first
  };
  std::uint32_t ways_;
  std::uint32_t sets_;
  std::uint64_t mask_;
  std::vector<Way> ways_storage_;
  std::vector<std::uint64_t> payloads_;
  std::uint64_t clock_ = 0;
};

}  // namespace memvirt::translation
