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
    queues_[index(l)].push_back(entry_of(g, bump_gen(g)));
    compact_if_stale(l);
  }
}

void Lru::remove(Gfn g) {
  add(g, LruList::kNone);
}

std::optional<Gfn> Lru::tail(LruList l) {
  auto& q = queues_[index(l)];
  while (!q.empty()) {
    const std::uint32_t e = q.front();
    if (live(e, l)) return Gfn{e & kGfnMask};
    q.pop_front();
  }
  return std::nullopt;
}

std::optional<Gfn> Lru::take_tail(LruList l) {
  const std::optional<Gfn> g = tail(l);
  if (g) {
    queues_[index(l)].pop_front();
    remove(*g);
  }
  return g;
}

void Lru::rotate_tail(LruList l) {
  auto& q = queues_[index(l)];
  const Gfn g{q.front() & kGfnMask};
  q.pop_front();
  q.push_back(entry_of(g, bump_gen(g)));
  compact_if_stale(l);
}

void Lru::compact(LruList l) {
  queues_[index(l)].retain_if([&](std::uint32_t e) { return live(e, l); });
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
  for (const auto& q : queues_) bytes += q.capacity() * sizeof(std::uint32_t);
  for (const auto& c : gens_) bytes += sizeof(c) + (c ? 1U << kGenShift : 0);
  return bytes;
}

void Lru::check() const {
  for (std::size_t i = 1; i < kLruLists; ++i) {
    const auto l = static_cast<LruList>(i);
    if (!queued(l)) continue;
    std::vector<std::uint32_t> seen;
    for (std::size_t k = 0; k < queues_[i].size(); ++k) {
      const std::uint32_t e = queues_[i].at(k);
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
