// A sparse array of 32-bit values (0 = empty) that costs little while its values come in
// runs: consecutive indices holding consecutive values, ascending or descending. The guest's
// page tables, page cache indices and reverse map are such arrays: a first-touch fault
// sequence allocates frames in runs, so most chunks are a handful of runs, and a chunk turns
// into a plain array only when its values stop being regular.
//
// Contract: get(i) returns the last value set at i (0 if none); set(i, 0) empties i. The
// representation never changes what get() returns.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace memvirt {

class RunChunk {
 public:
  static constexpr unsigned kShift = 9;
  static constexpr std::uint32_t kSize = 1U << kShift;

  [[nodiscard]] std::uint32_t get(std::uint32_t i) const;
  void set(std::uint32_t i, std::uint32_t value);
  [[nodiscard]] bool empty() const { return dense_ ? populated_ == 0 : runs_.empty(); }
  [[nodiscard]] bool dense() const { return dense_ != nullptr; }
  [[nodiscard]] std::uint32_t populated() const;
  [[nodiscard]] std::uint64_t memory_bytes() const;

 private:
  // Indices [lo, lo + |len|) hold first, first + s, first + 2s, ... with s the sign of len.
  struct Run {
    std::uint16_t lo = 0;
    std::int16_t len = 0;
    std::uint32_t first = 0;
    [[nodiscard]] std::uint32_t count() const {
      return static_cast<std::uint32_t>(len < 0 ? -len : len);
    }
    [[nodiscard]] std::uint32_t end() const { return lo + count(); }
    [[nodiscard]] std::uint32_t at(std::uint32_t i) const {
      const std::uint32_t k = i - lo;
      return len < 0 ? first - k : first + k;
    }
  };
  // Past this many runs a plain array (2 KiB) is smaller than the runs' search cost is worth.
  static constexpr std::size_t kMaxRuns = 64;

  void densify();
  // Index of the first run whose end is beyond i (the run holding i, or the next one).
  [[nodiscard]] std::size_t find(std::uint32_t i) const;
  bool try_extend(std::size_t at, std::uint32_t i, std::uint32_t value);

  std::vector<Run> runs_;  // sorted by lo, disjoint
  std::unique_ptr<std::uint32_t[]> dense_;
  std::uint32_t populated_ = 0;  // non-zero entries of a dense chunk
};

class RunArray {
 public:
  explicit RunArray(std::uint64_t size = 0) { resize(size); }
  void resize(std::uint64_t size) {
    chunks_.resize((size + RunChunk::kSize - 1) >> RunChunk::kShift);
  }
  [[nodiscard]] std::uint64_t size() const {
    return static_cast<std::uint64_t>(chunks_.size()) << RunChunk::kShift;
  }
  [[nodiscard]] std::uint32_t get(std::uint64_t i) const {
    const auto& c = chunks_[i >> RunChunk::kShift];
    return c ? c->get(static_cast<std::uint32_t>(i & (RunChunk::kSize - 1))) : 0;
  }
  void set(std::uint64_t i, std::uint32_t value);
  // Drops every entry of chunk `c` (indices c * kSize ...).
  void clear_chunk(std::uint64_t c) { chunks_[c].reset(); }
  [[nodiscard]] std::uint64_t memory_bytes() const;

 private:
  std::vector<std::unique_ptr<RunChunk>> chunks_;
};

}  // namespace memvirt
