// The data caches seen by page-walk references: a hierarchy of set-associative levels of 64-byte
// lines, each with its load-to-use latency, backed by memory. Page-table lines compete with the
// workload's data lines when data references are fed in too. Non-inclusive fill: a miss fills
// every level.
#pragma once

#include <cstdint>
#include <vector>

#include "translation/set_assoc.hpp"

namespace memvirt::translation {

struct CacheLevelConfig {
  std::uint64_t bytes = 0;
  std::uint32_t ways = 1;
  std::uint32_t hit_cycles = 0;
};

struct CacheConfig {
  std::vector<CacheLevelConfig> levels;
  std::uint32_t memory_cycles = 0;
};

class CacheHierarchy {
 public:
  static constexpr unsigned kLineShift = 6;
  explicit CacheHierarchy(const CacheConfig& config) : memory_cycles_(config.memory_cycles) {
    for (const auto& l : config.levels) {
      const auto lines = static_cast<std::uint32_t>(l.bytes >> kLineShift);
      levels_.emplace_back(lines, l.ways);
      hit_cycles_.push_back(l.hit_cycles);
    }
  }
  // Latency in cycles of a load of physical address `pa`, and the fills it causes.
  std::uint32_t access(std::uint64_t pa) {
    const std::uint64_t line = pa >> kLineShift;
    // After any access its line is the most recently used of its L1 set, so a repeat access
    // hits without changing any state.
    if (line == last_line_ && !levels_.empty()) return hit_cycles_[0];
    last_line_ = line;
    std::uint64_t unused = 0;
    for (std::size_t i = 0; i < levels_.size(); ++i) {
      if (levels_[i].lookup(line, &unused)) {
        for (std::size_t j = 0; j < i; ++j) levels_[j].insert(line, 0);
        return hit_cycles_[i];
      }
    }
    for (auto& l : levels_) l.insert(line, 0);
    return memory_cycles_;
  }

 private:
  std::vector<SetAssoc> levels_;
  std::vector<std::uint32_t> hit_cycles_;
  std::uint32_t memory_cycles_;
  std::uint64_t last_line_ = ~std::uint64_t{0};
};

}  // namespace memvirt::translation
