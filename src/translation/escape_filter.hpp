// The escape filter (seed 004): a Bloom filter checked beside the VMM segment registers. A
// guest-physical page inside the VMM segment whose number hits the filter escapes the segment
// and translates through the nested page table instead. Pages inserted always hit (no false
// negatives); other pages hit with the Bloom false-positive rate and only cost a walk.
// Hashes are from the H3 family (Carter and Wegman 1979), the usual hardware choice: each hash
// is the XOR of one random row per set bit of the key, evaluated here a byte at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "translation/address.hpp"

namespace memvirt::translation {

class EscapeFilter {
 public:
  // bits: filter size (power of two not required); hashes: number of H3 functions; seed picks
  // the H3 matrices.
  EscapeFilter(std::uint32_t bits, std::uint32_t hashes, std::uint64_t seed);

  void insert(std::uint64_t page_number);
  [[nodiscard]] bool maybe_contains(std::uint64_t page_number) const;

  // An escaped 4 KiB page, and (when the guest maps large pages) the `span` frame holding it,
  // so a translation about to be cached as a large page can ask whether any part of it
  // escapes. Keys are tagged by size; the 4 KiB key is the plain page number.
  void insert_escape(std::uint64_t gpa, PageSize span);
  [[nodiscard]] bool maybe_escapes(std::uint64_t gpa, PageSize span) const;
  static std::uint64_t key(std::uint64_t gpa, PageSize span) {
    return (gpa >> page_shift(span)) | (static_cast<std::uint64_t>(span) << 60);
  }
  [[nodiscard]] std::uint32_t bits() const { return bits_; }
  [[nodiscard]] std::uint32_t hashes() const { return hashes_; }
  // (1 - e^{-k n / m})^k for n inserted keys.
  [[nodiscard]] static double theoretical_false_positive_rate(std::uint32_t bits,
                                                              std::uint32_t hashes,
                                                              std::uint64_t inserted);

 private:
  [[nodiscard]] std::uint32_t hash(std::uint32_t which, std::uint64_t key) const;
  std::uint32_t bits_;
  std::uint32_t hashes_;
  std::vector<std::uint32_t> h3_;  // [hash][byte position][byte value]
  std::vector<std::uint64_t> words_;
};

}  // namespace memvirt::translation
