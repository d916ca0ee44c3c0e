// The data caches seen by page-walk references: a hierarchy of set-associative levels of 64-byte
// lines, each with its load-to-use latency, backed by memory. Page-table lines compete with the
// workload's data lines when data references are fed in too. Non-inclusive fill: a miss fills
// every level.
#pragma once

#include <cstdint>
#include <stdexcept>
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
  static constexpr std::size_t kMaxLevels = 8;
  // At most kMaxLevels levels (std::invalid_argument otherwise).
  explicit CacheHierarchy(const CacheConfig& config) : memory_cycles_(config.memory_cycles) {
    if (config.levels.size() > kMaxLevels) {
      throw std::invalid_argument("cache: more than 8 levels");
    }
    for (const auto& l : config.levels) {
      const auto lines = static_cast<std::uint32_t>(l.bytes >> kLineShift);
      levels_.emplace_back(lines, l.ways, /*payloads=*/false);
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
    // One pass per level finds the hit or the victim, so the fills of the levels that missed
    // need no second search of their sets.
    SetAssoc::Probe probes[kMaxLevels];
    const std::size_t n = levels_.size();
    for (std::size_t i = 0; i < n; ++i) {
      probes[i] = levels_[i].probe(line);
      if (probes[i].hit) {
        levels_[i].touch(probes[i]);
        for (std::size_t j = 0; j < i; ++j) levels_[j].fill(probes[j], line, 0);
        return hit_cycles_[i];
      }
    }
    for (std::size_t i = 0; i < n; ++i) levels_[i].fill(probes[i], line, 0);
    return memory_cycles_;
  }

 private:
  std::vector<SetAssoc> levels_;
  std::vector<std::uint32_t> hit_cycles_;
  std::uint32_t memory_cycles_;
  std::uint64_t last_line_ = ~std::uint64_t{0};
};

}  // namespace memvirt::translation
