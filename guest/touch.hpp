// Memory the guest programs allocate and touch for real: anonymous mappings written page by
// page, so every page is backed in the guest and, through the guest, on the host.
#pragma once

#include <cstddef>
#include <cstdint>

namespace guest {

constexpr std::size_t kPage = 4096;

// splitmix64's finalizer: the programs' stamps and random draws.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

enum class Thp { kDefault, kNever, kAlways };

// Maps `bytes` of private anonymous memory with the given huge page advice; nullptr when the
// kernel refuses.
void* map_anonymous(std::uint64_t bytes, Thp thp = Thp::kDefault);

// Unique page contents for one program: stamps no other page of any guest program has.
class Stamps {
 public:
  Stamps(std::uint64_t seed, std::uint64_t stream);
  std::uint64_t next();

 private:
  std::uint64_t base_;
  std::uint64_t counter_ = 0;
};

// Writes every page of [p, p + bytes): fills it, then stamps its first word with a unique
// value, as the simulator's workloads give every page they touch a content no other page
// has (nothing for KSM to merge, no zero pages).
void touch_unique(void* p, std::uint64_t bytes, Stamps& stamps);

// Writes every page of [p, p + bytes) with the bytes the simulator's content stands for
// (memvirt::generate_page_bytes): page i gets the fingerprint
// make_unique_fingerprint(splitmix64(base + first + i), cls), the simulator's UniqueContent
// draw first + i of a stream whose base is `base`.
void touch_contents(void* p, std::uint64_t bytes, unsigned cls, std::uint64_t base,
                    std::uint64_t first);

// Makes the compiler treat the memory as read, so the writes before a munmap or exit are kept
// (a memset followed by free is otherwise a dead store it may remove).
inline void keep(void* p) {
  asm volatile("" : : "r"(p) : "memory");
}

}  // namespace guest
