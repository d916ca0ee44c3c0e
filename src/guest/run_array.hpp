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
  // Calls fn(i, value) for every non-empty index i, in ascending order.
  template <typename Fn>
  void for_each(Fn fn) const {
    if (dense_) {
      for (std::uint32_t i = 0; i < kSize; ++i) {
        if (dense_[i] != 0) fn(i, dense_[i]);
      }
      return;
    }
    for (const Run& r : runs_) {
      for (std::uint32_t i = r.lo; i < r.end; ++i) fn(i, r.at(i));
    }
  }

 private:
  // Indices [lo, end) hold first, first + 1, first + 2, ..., or first, first - 1, ... when
  // descending; a run of one value is ascending. The end is stored, not a length, because
  // every lookup's binary search compares with it.
  struct Run {
    std::uint16_t end = 0;
    std::uint16_t lo : 15 = 0;
    std::uint16_t descending : 1 = 0;
    std::uint32_t first = 0;
    [[nodiscard]] std::uint32_t count() const { return end - lo; }
    void set_lo(std::uint32_t i) { lo = i & 0x7FFFU; }  // i < kSize
    [[nodiscard]] std::uint32_t at(std::uint32_t i) const {
      const std::uint32_t k = i - lo;
      return descending ? first - k : first + k;
    }
  };
  static_assert(sizeof(Run) == 8);
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
  // Calls fn(i, value) for every non-empty index i of chunk `c` (indices c * kSize ...), in
  // ascending order; a walk of the chunk without a lookup per index.
  template <typename Fn>
  void for_each_in_chunk(std::uint64_t c, Fn fn) const {
    if (!chunks_[c]) return;
    const std::uint64_t base = c << RunChunk::kShift;
    chunks_[c]->for_each([&](std::uint32_t i, std::uint32_t value) { fn(base | i, value); });
  }
  // Drops every entry of chunk `c` (indices c * kSize ...).
  void clear_chunk(std::uint64_t c) { chunks_[c].reset(); }
  [[nodiscard]] std::uint64_t memory_bytes() const;

 private:
  std::vector<std::unique_ptr<RunChunk>> chunks_;
};

}  // namespace memvirt
