// Pages of known kinds for the compressor and tmem tests: zeros, random bytes, text-like.
#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "core/rng.hpp"

namespace memvirt::testing {

using Page = std::vector<std::byte>;

inline Page zero_page() {
  return Page(4096, std::byte{0});
}

inline Page random_page(std::uint64_t seed) {
  Page p(4096);
  std::uint64_t x = seed;
  for (std::size_t i = 0; i < p.size(); i += 8) {
    x = splitmix64(x + i);
    std::memcpy(p.data() + i, &x, 8);
  }
  return p;
}

// Words drawn from a small vocabulary, as source files and logs repeat them.
inline Page text_page(std::uint64_t seed) {
  static constexpr std::array<const char*, 16> kWords = {
      "static", "int", "return", "struct", "page", "unsigned", "long", "if",
      "else",   "for", "void",   "const",  "NULL", "memory",   "free", "(*)"};
  Page p(4096);
  std::uint64_t x = seed;
  std::size_t at = 0;
  while (at < p.size()) {
    x = splitmix64(x);
    const std::string w = std::string(kWords[x % kWords.size()]) + ((x >> 8) % 7 == 0 ? "\n" : " ");
    for (const char c : w) {
      if (at == p.size()) break;
      p[at++] = static_cast<std::byte>(c);
    }
  }
  return p;
}

}  // namespace memvirt::testing
