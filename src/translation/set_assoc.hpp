// A set-associative array of keys with LRU replacement, the storage of both TLBs and the
// page-table-line caches. Keys are arbitrary 64-bit values except kEmpty; each entry carries a
// 64-bit payload. Sets need not be a power of two (a 15 MiB 20-way cache has 12288 sets).
#pragma once

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
        keys_(entries, kEmpty),
        payloads_(entries, 0),
        stamps_(entries, 0) {}

  // True on a hit (the entry becomes most recently used); *payload receives its payload.
  bool lookup(std::uint64_t key, std::uint64_t* payload) {
    const std::size_t first = set_of(key) * ways_;
    for (std::size_t i = first; i < first + ways_; ++i) {
      if (keys_[i] == key) {
        stamps_[i] = ++clock_;
        *payload = payloads_[i];
        return true;
      }
    }
    return false;
  }

  // Inserts or refreshes `key`, evicting the least recently used entry of its set. Returns the
  // evicted key (kEmpty if none).
  std::uint64_t insert(std::uint64_t key, std::uint64_t payload) {
    const std::size_t first = set_of(key) * ways_;
    std::size_t victim = first;
    for (std::size_t i = first; i < first + ways_; ++i) {
      if (keys_[i] == key) {
        victim = i;
        break;
      }
      if (stamps_[i] < stamps_[victim]) victim = i;
    }
    const std::uint64_t evicted = keys_[victim] == key ? kEmpty : keys_[victim];
    keys_[victim] = key;
    payloads_[victim] = payload;
    stamps_[victim] = ++clock_;
    return evicted;
  }

  void clear() {
    std::fill(keys_.begin(), keys_.end(), kEmpty);
    std::fill(stamps_.begin(), stamps_.end(), 0);
  }
  [[nodiscard]] bool contains(std::uint64_t key) const {
    const std::size_t first = set_of(key) * ways_;
    for (std::size_t i = first; i < first + ways_; ++i) {
      if (keys_[i] == key) return true;
    }
    return false;
  }
  [[nodiscard]] std::uint32_t ways() const { return ways_; }
  [[nodiscard]] std::uint32_t sets() const { return sets_; }

 private:
  [[nodiscard]] std::size_t set_of(std::uint64_t key) const {
    if (sets_ == 1) return 0;
    return mask_ != 0 ? (key & mask_) : (key % sets_);
  }
  std::uint32_t ways_;
  std::uint32_t sets_;
  std::uint64_t mask_;
  std::vector<std::uint64_t> keys_;
  std::vector<std::uint64_t> payloads_;
  std::vector<std::uint64_t> stamps_;
  std::uint64_t clock_ = 0;
};

}  // namespace memvirt::translation
