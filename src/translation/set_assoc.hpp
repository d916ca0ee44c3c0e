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

  // entries must be a positive multiple of ways. Without payloads (a data cache's tag array)
  // lookups report 0 and inserts store nothing, which saves a store to a second array.
  SetAssoc(std::uint32_t entries, std::uint32_t ways, bool payloads = true)
      : ways_(ways),
        sets_(entries / ways),
        mask_((sets_ & (sets_ - 1)) == 0 ? sets_ - 1 : 0),
        ways_storage_(entries),
        payloads_(payloads ? entries : 0, 0) {}

  // True on a hit (the entry becomes most recently used); *payload receives its payload.
  bool lookup(std::uint64_t key, std::uint64_t* payload) {
    const std::size_t first = set_of(key) * ways_;
    Way* w = &ways_storage_[first];
    // A lookup needs no victim, so it scans the keys only.
    for (std::uint32_t i = 0; i < ways_; ++i) {
      if (w[i].key == key) {
        w[i].stamp = ++clock_;
        *payload = payloads_.empty() ? 0 : payloads_[first + i];
        return true;
      }
    }
    return false;
  }

  // Inserts or refreshes `key`, evicting the least recently used entry of its set. Returns the
  // evicted key (kEmpty if none).
  std::uint64_t insert(std::uint64_t key, std::uint64_t payload) {
    const Probe p = probe(key);
    const std::uint64_t old = ways_storage_[p.first + p.way].key;
    fill(p, key, payload);
    return p.hit ? kEmpty : old;
  }

  // One pass over the set of `key`: the way holding it, or else the way insert() would evict
  // (the first of the least recently used; never-used ways have stamp 0 and go first). A probe
  // stays valid until this array changes.
  struct Probe {
    std::size_t first;  // index of the set's first way
    std::uint32_t way;  // the hit, or the victim
    bool hit;
  };
  [[nodiscard]] Probe probe(std::uint64_t key) const {
    const std::size_t first = set_of(key) * ways_;
    // Fixed trip counts for the usual associativities let the compiler unroll the scans,
    // which is most of the cost of a miss in the cache model.
    switch (ways_) {
      case 2:
        return probe_ways<2>(first, key);
      case 4:
        return probe_ways<4>(first, key);
      case 8:
        return probe_ways<8>(first, key);
      case 16:
        return probe_ways<16>(first, key);
      case 20:
        return probe_ways<20>(first, key);
      case 32:
        return probe_ways<32>(first, key);
      default:
        return probe_ways<0>(first, key);
    }
  }
  // After a hit: the entry becomes most recently used.
  void touch(const Probe& p) { ways_storage_[p.first + p.way].stamp = ++clock_; }
  // Stores `key` in the probed way (the hit refreshed, or the victim replaced), most recently
  // used.
  void fill(const Probe& p, std::uint64_t key, std::uint64_t payload) {
    ways_storage_[p.first + p.way] = Way{key, ++clock_};
    if (!payloads_.empty()) payloads_[p.first + p.way] = payload;
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
  // W: the associativity when known at compile time, 0 for ways_.
  template <std::uint32_t W>
  [[nodiscard]] Probe probe_ways(std::size_t first, std::uint64_t key) const {
    const std::uint32_t n = W != 0 ? W : ways_;
    const Way* w = &ways_storage_[first];
    for (std::uint32_t i = 0; i < n; ++i) {
      if (w[i].key == key) return Probe{first, i, true};
    }
    std::uint32_t victim = 0;
    std::uint64_t oldest = w[0].stamp;
    for (std::uint32_t i = 1; i < n; ++i) {
      if (w[i].stamp < oldest) {
        oldest = w[i].stamp;
        victim = i;
      }
    }
    return Probe{first, victim, false};
  }

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
