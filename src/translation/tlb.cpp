#include "translation/tlb.hpp"

namespace memvirt::translation {

TlbHierarchy::TlbHierarchy(const TlbConfig& config) {
  for (unsigned s = 0; s < kPageSizes; ++s) {
    l1_[s] = make(config.l1[s]);
    l2_[s] = make(config.l2[s]);
  }
}

bool TlbHierarchy::lookup_l1(std::uint64_t addr, TlbSpace space, TlbHit* hit) {
  for (unsigned s = 0; s < kPageSizes; ++s) {
    if (!l1_[s]) continue;
    const auto size = static_cast<PageSize>(s);
    if (l1_[s]->lookup(key(addr, space, size), &hit->out_base)) {
      hit->size = size;
      return true;
    }
  }
  return false;
}

bool TlbHierarchy::lookup_l2(std::uint64_t addr, TlbSpace space, TlbHit* hit) {
  for (unsigned s = 0; s < kPageSizes; ++s) {
    if (!l2_[s]) continue;
    const auto size = static_cast<PageSize>(s);
    if (l2_[s]->lookup(key(addr, space, size), &hit->out_base)) {
      hit->size = size;
      insert_l1(addr, space, size, hit->out_base);
      return true;
    }
  }
  return false;
}

int TlbHierarchy::l1_index_for(PageSize size) const {
  for (int s = static_cast<int>(size); s >= 0; --s) {
    if (l1_[s]) return s;
  }
  return -1;
}

void TlbHierarchy::insert_l1(std::uint64_t addr, TlbSpace space, PageSize size,
                             std::uint64_t out_base) {
  const int s = l1_index_for(size);
  if (s < 0) return;
  const auto stored = static_cast<PageSize>(s);
  // Splintering a large page: the entry covers the smaller page holding addr.
  const std::uint64_t within = addr & (page_bytes(size) - 1) & ~(page_bytes(stored) - 1);
  l1_[s]->insert(key(addr, space, stored), out_base + within);
}

void TlbHierarchy::insert(std::uint64_t addr, TlbSpace space, PageSize size,
                          std::uint64_t out_base) {
  insert_l1(addr, space, size, out_base);
  // Sandy Bridge's L2 holds 4 KiB entries only; larger pages then live in L1 alone.
  auto& l2 = l2_[static_cast<unsigned>(size)];
  if (l2) l2->insert(key(addr, space, size), out_base);
}

void TlbHierarchy::flush() {
  for (auto& a : l1_) {
    if (a) a->clear();
  }
  for (auto& a : l2_) {
    if (a) a->clear();
  }
}

}  // namespace memvirt::translation
