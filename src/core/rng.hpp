// Seeded random streams, one per component, derived from the scenario seed and the
// component's identity, so adding a VM never changes the draws of another. The generator is
// xoshiro256** (Blackman and Vigna); distributions are written here rather than taken from
// <random> because the standard library's distributions differ between implementations.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace memvirt {

constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Stable 64-bit hash of a name (FNV-1a), for deriving stream identities.
constexpr std::uint64_t name_hash(std::string_view s) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ULL;
  }
  return h;
}

class Rng {
 public:
  // A stream for (seed, component, index): e.g. (scenario seed, "vm.workload", vm number).
  Rng(std::uint64_t seed, std::string_view component, std::uint64_t index = 0) {
    std::uint64_t x = splitmix64(seed ^ splitmix64(name_hash(component) ^ splitmix64(index)));
    for (auto& w : s_) {
      x = splitmix64(x);
      w = x;
    }
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n) {
    __extension__ using Wide = unsigned __int128;  // GCC/Clang: the high half of a 64x64 product
    return static_cast<std::uint64_t>((static_cast<Wide>(next()) * n) >> 64);
  }
  double exponential(double mean) { return -mean * std::log1p(-uniform()); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4]{};
};

}  // namespace memvirt
