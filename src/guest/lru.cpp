#include "guest/lru.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace memvirt {

namespace {
constexpr std::uint32_t kGfnMask = kLruMaxPages - 1;
constexpr std::uint32_t entry_of(Gfn g, unsigned gen) {
  return g.value() | (gen << 28);
}
}  // namespace

bool Lru::live(std::uint32_t entry, LruList l) const {
  const PageMeta m = pages_.get(Gfn{entry & kGfnMask});
  const Gfn g{entry & kGfnMask};
  return m.state() == GuestPageState::kInUse && list_of(m) == l && gen(g) == entry >> 28;
}

unsigned Lru::bump_gen(Gfn g) {
  auto& c = gens_[g.value() >> kGenShift];
  if (!c) c = std::make_unique<std::uint8_t[]>(1U << kGenShift);
  std::uint8_t& v = c[g.value() & ((1U << kGenShift) - 1)];
  v = static_cast<std::uint8_t>((v + 1) & 15);
  return v;
}

void Lru::add_tail(Gfn g, LruList l) {
  add(g, LruList::kNone);
  PageMeta& m = pages_.mut(g);
  PageFlags f = m.flags();
  f.set_list(static_cast<unsigned>(l));
  m.set_flags(f);
  ++live_[index(l)];
  if (queued(l)) queues_[index(l)].push_front(entry_of(g, bump_gen(g)));
}

void Lru::add(Gfn g, LruList l) {
  PageMeta& m = pages_.mut(g);
  PageFlags f = m.flags();
  const auto old = static_cast<LruList>(f.list());
  if (old != LruList::kNone) --live_[index(old)];
  f.set_list(static_cast<unsigned>(l));
  m.set_flags(f);
  if (l == LruList::kNone) return;
  ++live_[index(l)];
  if (queued(l)) {
    auto& q = queues_[index(l)];
    q.push_back(entry_of(g, bump_gen(g)));
    if (q.size() > live_[index(l)] + live_[index(l)] / 8 + 1024) compact(l);
  }
}

void Lru::remove(Gfn g) {
  add(g, LruList::kNone);
}

std::optional<Gfn> Lru::take_tail(LruList l) {
  auto& q = queues_[index(l)];
  while (!q.empty()) {
    const std::uint32_t e = q.front();
    q.pop_front();
    if (live(e, l)) {
      const Gfn g{e & kGfnMask};
      remove(g);
      return g;
    }
  }
  return std::nullopt;
}

void Lru::compact(LruList l) {
  auto& q = queues_[index(l)];
  std::deque<std::uint32_t> kept;
  for (const std::uint32_t e : q) {
    if (live(e, l)) kept.push_back(e);
  }
  q.swap(kept);
}

void Lru::set_track_anon(bool on, std::uint32_t total_pages) {
  if (on == track_anon_) return;
  track_anon_ = on;
  for (const LruList l : {LruList::kInactiveAnon, LruList::kActiveAnon}) {
    auto& q = queues_[index(l)];
    q.clear();
    if (!on) continue;
    for (std::uint32_t g = 0; g < total_pages; ++g) {
      const PageMeta m = pages_.get(Gfn{g});
      if (m.state() == GuestPageState::kInUse && list_of(m) == l) {
        q.push_back(entry_of(Gfn{g}, bump_gen(Gfn{g})));
      }
    }
  }
}

std::uint64_t Lru::memory_bytes() const {
  std::uint64_t bytes = 0;
  // A deque holds its entries in 512-byte blocks plus a map of block pointers.
  for (const auto& q : queues_) bytes += q.size() * sizeof(std::uint32_t) + q.size() / 16;
  for (const auto& c : gens_) bytes += sizeof(c) + (c ? 1U << kGenShift : 0);
  return bytes;
}

void Lru::check() const {
  for (std::size_t i = 1; i < kLruLists; ++i) {
    const auto l = static_cast<LruList>(i);
    if (!queued(l)) continue;
    std::vector<std::uint32_t> seen;
    for (const std::uint32_t e : queues_[i]) {
      if (live(e, l)) seen.push_back(e & kGfnMask);
    }
    // A stale entry can match again after 16 re-adds (see the header); count pages, not entries.
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    if (seen.size() != live_[i]) {
      throw std::logic_error(fmt::format("LRU list {} holds live entries for {} pages, counts {}",
                                         i, seen.size(), live_[i]));
    }
  }
}

}  // namespace memvirt
