#include "touch.hpp"

#include <sys/mman.h>

#include <cstring>
#include <span>

#include "host/content.hpp"

namespace guest {
void* map_anonymous(std::uint64_t bytes, Thp thp) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  if (thp == Thp::kNever) madvise(p, bytes, MADV_NOHUGEPAGE);
  if (thp == Thp::kAlways) madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

Stamps::Stamps(std::uint64_t seed, std::uint64_t stream) : base_(mix(seed ^ mix(stream))) {}

std::uint64_t Stamps::next() {
  // mix is a bijection, so distinct counters give distinct stamps.
  return mix(base_ + counter_++);
}

void touch_unique(void* p, std::uint64_t bytes, Stamps& stamps) {
  auto* c = static_cast<unsigned char*>(p);
  for (std::uint64_t off = 0; off + kPage <= bytes; off += kPage) {
    std::memset(c + off, 0x5a, kPage);
    const std::uint64_t s = stamps.next();
    std::memcpy(c + off, &s, sizeof s);
  }
  keep(p);
}

void touch_contents(void* p, std::uint64_t bytes, unsigned cls, std::uint64_t base,
                    std::uint64_t first) {
  auto* c = static_cast<std::byte*>(p);
  std::uint64_t i = first;
  for (std::uint64_t off = 0; off + kPage <= bytes; off += kPage, ++i) {
    const memvirt::Fingerprint fp =
        memvirt::make_unique_fingerprint(memvirt::splitmix64(base + i), cls);
    memvirt::generate_page_bytes(fp, std::span<std::byte>(c + off, kPage));
  }
  keep(p);
}

}  // namespace guest
