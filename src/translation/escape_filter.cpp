#include "translation/escape_filter.hpp"

#include <cmath>
#include <stdexcept>

#include "core/rng.hpp"

namespace memvirt::translation {

EscapeFilter::EscapeFilter(std::uint32_t bits, std::uint32_t hashes, std::uint64_t seed)
    : bits_(bits), hashes_(hashes), h3_(std::size_t{hashes} * 8 * 256), words_((bits + 63) / 64) {
  if (bits == 0 || hashes == 0) throw std::invalid_argument("escape filter: empty");
  Rng rng(seed, "translation.escape_filter.h3");
  // Row r of the H3 matrix for each key bit; the byte tables fold eight rows each.
  for (std::uint32_t h = 0; h < hashes; ++h) {
    for (unsigned byte = 0; byte < 8; ++byte) {
      std::uint32_t rows[8];
      for (auto& r : rows) r = static_cast<std::uint32_t>(rng.next());
      for (unsigned v = 0; v < 256; ++v) {
        std::uint32_t x = 0;
        for (unsigned b = 0; b < 8; ++b) {
          if ((v >> b) & 1U) x ^= rows[b];
        }
        h3_[(std::size_t{h} * 8 + byte) * 256 + v] = x;
      }
    }
  }
}

std::uint32_t EscapeFilter::hash(std::uint32_t which, std::uint64_t key) const {
  std::uint32_t x = 0;
  const std::uint32_t* t = &h3_[std::size_t{which} * 8 * 256];
  for (unsigned byte = 0; byte < 8; ++byte, key >>= 8) x ^= t[byte * 256 + (key & 0xFF)];
  return static_cast<std::uint32_t>((std::uint64_t{x} * bits_) >> 32);
}

void EscapeFilter::insert(std::uint64_t page_number) {
  for (std::uint32_t h = 0; h < hashes_; ++h) {
    const std::uint32_t b = hash(h, page_number);
    words_[b / 64] |= 1ULL << (b % 64);
  }
}

bool EscapeFilter::maybe_contains(std::uint64_t page_number) const {
  for (std::uint32_t h = 0; h < hashes_; ++h) {
    const std::uint32_t b = hash(h, page_number);
    if (((words_[b / 64] >> (b % 64)) & 1U) == 0) return false;
  }
  return true;
}

void EscapeFilter::insert_escape(std::uint64_t gpa, PageSize span) {
  insert(key(gpa, PageSize::k4K));
  if (span != PageSize::k4K) insert(key(gpa, span));
}

bool EscapeFilter::maybe_escapes(std::uint64_t gpa, PageSize span) const {
  return maybe_contains(key(gpa, span));
}

double EscapeFilter::theoretical_false_positive_rate(std::uint32_t bits, std::uint32_t hashes,
                                                     std::uint64_t inserted) {
  const double k = hashes;
  return std::pow(1.0 - std::exp(-k * static_cast<double>(inserted) / bits), k);
}

}  // namespace memvirt::translation
