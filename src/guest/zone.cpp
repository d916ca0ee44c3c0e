#include "guest/zone.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

#include "core/rng.hpp"

namespace memvirt {

Zone::Zone(std::string name, MemMap& map, Gfn start, std::uint32_t pages, unsigned cpus)
    : name_(std::move(name)), map_(map), start_(start), pages_(pages), pcp_(cpus) {
  // Hand all pages to the buddy allocator in the largest aligned blocks, in address order,
  // as memblock_free_all() does at boot.
  std::uint32_t g = start.value();
  const std::uint32_t end_pfn = start.value() + pages;
  while (g < end_pfn) {
    unsigned order = kMaxOrder - 1;
    while (order > 0 && ((g & ((1U << order) - 1)) != 0 || g + (1U << order) > end_pfn)) --order;
    free_one_page(Gfn{g}, order);
    g += 1U << order;
  }
}

void Zone::set_pcp(std::uint32_t batch, std::uint32_t high) {
  for (auto& p : pcp_) {
    p.batch = batch;
    p.high = high;
  }
}

std::uint64_t Zone::pcp_pages() const {
  std::uint64_t n = 0;
  for (const auto& p : pcp_) n += p.list.count;
  return n;
}

bool Zone::page_is_buddy(Gfn buddy, unsigned order) const {
  if (!contains(buddy)) return false;
  const PageMeta m = map_[buddy];
  return m.state() == GuestPageState::kBuddy && m.order().value() == order;
}

void Zone::add_to_free_list(Gfn gfn, unsigned order, bool tail) {
  PageMeta& m = map_.mut(gfn);
  m.set_state(GuestPageState::kBuddy);
  m.set_order(PageOrder{order});
  m.set_reported(false);
  PageList& list = free_area_[order];
  m.set_node(tail ? map_.lists.push_back(list, gfn) : map_.lists.push_front(list, gfn));
  nr_free_pages_ += 1ULL << order;
}

void Zone::del_from_free_list(Gfn gfn) {
  PageMeta& m = map_.mut(gfn);
  if (m.state() != GuestPageState::kBuddy) throw std::logic_error("not a free block head");
  const unsigned order = m.order().value();
  map_.lists.remove(free_area_[order], m.node());
  nr_free_pages_ -= 1ULL << order;
  m.set_state(GuestPageState::kInUse);
  m.set_node(PageMeta::kNoNode);
  m.set_reported(false);  // __ClearPageReported in del_page_from_free_list()
}

void Zone::free_one_page(Gfn gfn, unsigned order, bool notify) {
  std::uint32_t pfn = gfn.value();
  std::uint32_t buddy_pfn = 0;
  // Merge with free buddies. Buddy arithmetic is on zone-relative pfns: zones start on
  // max-order boundaries, so absolute and relative alignment agree.
  while (order < kMaxOrder - 1) {
    buddy_pfn = pfn ^ (1U << order);
    if (!page_is_buddy(Gfn{buddy_pfn}, order)) break;
    del_from_free_list(Gfn{buddy_pfn});
    pfn &= buddy_pfn;
    ++order;
  }
  bool tail = false;
  if (shuffle_ && order >= kShuffleOrder) {
    tail = (splitmix64(shuffle_state_++) & 1) != 0;  // shuffle_pick_tail()
  } else if (order < kMaxOrder - 2) {
    // The buddy of the next-higher block: if it is free, our buddy may free soon and merge
    // twice, so keep this block at the tail, less likely to be split again.
    buddy_pfn = pfn ^ (1U << order);
    const std::uint32_t combined = buddy_pfn & pfn;
    const std::uint32_t higher_buddy = combined ^ (1U << (order + 1));
    tail = page_is_buddy(Gfn{higher_buddy}, order + 1);
  }
  add_to_free_list(Gfn{pfn}, order, tail);
  if (!notify) return;
  for (PageHooks* h : map_.hooks) h->on_buddy_free(*this, Gfn{pfn}, PageOrder{order});
}

void Zone::expand(Gfn gfn, unsigned low, unsigned high) {
  std::uint32_t size = 1U << high;
  while (high > low) {
    --high;
    size >>= 1;
    add_to_free_list(Gfn{gfn.value() + size}, high, false);
  }
}

Gfn Zone::rmqueue_smallest(unsigned order) {
  for (unsigned current = order; current < kMaxOrder; ++current) {
    PageList& list = free_area_[current];
    if (list.empty()) continue;
    const Gfn page = map_.lists.gfn(list.head);
    del_from_free_list(page);
    expand(page, order, current);
    return page;
  }
  return kNoPage;
}

Gfn Zone::rmqueue(unsigned cpu, unsigned order) {
  if (order != 0) return rmqueue_smallest(order);
  PerCpuPages& pcp = pcp_[cpu];
  if (pcp.list.empty()) {
    // rmqueue_bulk(): pages keep the order in which the buddy allocator gave them.
    for (std::uint32_t i = 0; i < pcp.batch; ++i) {
      const Gfn page = rmqueue_smallest(0);
      if (page == kNoPage) break;
      PageMeta& m = map_.mut(page);
      m.set_state(GuestPageState::kPcp);
      m.set_order(PageOrder{0});
      m.set_node(map_.lists.push_back(pcp.list, page));
    }
    if (pcp.list.empty()) return kNoPage;
  }
  const std::uint32_t node = pcp.list.head;
  const Gfn page = map_.lists.gfn(node);
  map_.lists.remove(pcp.list, node);
  PageMeta& m = map_.mut(page);
  m.set_state(GuestPageState::kInUse);
  m.set_node(PageMeta::kNoNode);
  return page;
}

void Zone::free_pages(unsigned cpu, Gfn gfn, unsigned order) {
  if (order != 0) {
    free_one_page(gfn, order);
    return;
  }
  PerCpuPages& pcp = pcp_[cpu];
  PageMeta& m = map_.mut(gfn);
  m.set_state(GuestPageState::kPcp);
  m.set_order(PageOrder{0});
  m.set_node(map_.lists.push_front(pcp.list, gfn));  // hot: at the head
  if (pcp.list.count >= pcp.high) {
    // free_pcppages_bulk(): the coldest pages, from the tail, go back to the buddy lists.
    for (std::uint32_t i = 0; i < pcp.batch && !pcp.list.empty(); ++i) {
      const std::uint32_t node = pcp.list.tail;
      const Gfn page = map_.lists.gfn(node);
      map_.lists.remove(pcp.list, node);
      PageMeta& pm = map_.mut(page);
      pm.set_state(GuestPageState::kInUse);
      pm.set_node(PageMeta::kNoNode);  // a page inside a free block has no node or flags
      free_one_page(page, 0);
    }
  }
}

void Zone::drain_pcp() {
  for (auto& pcp : pcp_) {
    while (!pcp.list.empty()) {
      const std::uint32_t node = pcp.list.tail;
      const Gfn page = map_.lists.gfn(node);
      map_.lists.remove(pcp.list, node);
      PageMeta& pm = map_.mut(page);
      pm.set_state(GuestPageState::kInUse);
      pm.set_node(PageMeta::kNoNode);  // a page inside a free block has no node or flags
      free_one_page(page, 0);
    }
  }
}

bool Zone::isolate(Gfn gfn) {
  const unsigned order = map_[gfn].order().value();
  // An order-0 check of min + the block's size stands in for a high-order check: the
  // block is known to exist.
  if (!watermark_ok(0, wmark_.min + (1ULL << order), 0)) return false;
  del_from_free_list(gfn);
  PageMeta& m = map_.mut(gfn);
  m.set_state(GuestPageState::kIsolated);
  m.set_order(PageOrder{order});
  return true;
}

void Zone::putback_isolated(Gfn gfn, unsigned order) {
  map_.mut(gfn).set_state(GuestPageState::kInUse);
  free_one_page(gfn, order, false);
}

void Zone::rotate_free_list_to(Gfn gfn) {
  const PageMeta m = map_[gfn];
  if (m.state() != GuestPageState::kBuddy) throw std::logic_error("not a free block head");
  map_.lists.rotate_to_front(free_area_[m.order().value()], m.node());
}

void Zone::enable_shuffle(std::uint64_t seed) {
  shuffle_ = true;
  shuffle_state_ = seed;
}

void Zone::shuffle_free_lists() {
  // __shuffle_zone() swaps blocks of SHUFFLE_ORDER at random; a Fisher-Yates permutation
  // of each such list gives the same distribution of list orders.
  for (unsigned order = kShuffleOrder; order < kMaxOrder; ++order) {
    PageList& list = free_area_[order];
    std::vector<Gfn> blocks;
    for (std::uint32_t n = list.head; n != 0; n = map_.lists.next(n))
      blocks.push_back(map_.lists.gfn(n));
    for (std::size_t i = blocks.size(); i > 1; --i) {
      const std::size_t j = splitmix64(shuffle_state_++) % i;
      std::swap(blocks[i - 1], blocks[j]);
    }
    for (const Gfn b : blocks) {
      PageMeta& m = map_.mut(b);
      map_.lists.remove(list, m.node());
      m.set_node(map_.lists.push_back(list, b));
    }
  }
}

bool Zone::watermark_ok(unsigned order, std::uint64_t mark, unsigned classzone) const {
  // __zone_watermark_ok(): free pages after this allocation must stay above mark + reserve,
  // and a block of at least `order` must exist.
  const std::int64_t free_after = static_cast<std::int64_t>(nr_free_pages_) - (1LL << order) + 1;
  if (free_after <= static_cast<std::int64_t>(mark + lowmem_reserve(classzone))) return false;
  if (order == 0) return true;
  for (unsigned o = order; o < kMaxOrder; ++o) {
    if (!free_area_[o].empty()) return true;
  }
  return false;
}

void Zone::check(bool full) const {
  std::uint64_t counted = 0;
  for (unsigned o = 0; o < kMaxOrder; ++o)
    counted += static_cast<std::uint64_t>(free_area_[o].count) << o;
  if (counted != nr_free_pages_) {
    throw std::logic_error(fmt::format("zone {}: free lists hold {} pages, nr_free says {}", name_,
                                       counted, nr_free_pages_));
  }
  if (!full) return;
  for (unsigned o = 0; o < kMaxOrder; ++o) {
    std::uint32_t n = 0;
    std::uint32_t prev = 0;
    for (std::uint32_t node = free_area_[o].head; node != 0; node = map_.lists.next(node)) {
      if (map_.lists.prev(node) != prev) throw std::logic_error("free list back link broken");
      const Gfn g = map_.lists.gfn(node);
      const PageMeta m = map_[g];
      if (!contains(g) || m.state() != GuestPageState::kBuddy || m.order().value() != o ||
          m.node() != node) {
        throw std::logic_error(fmt::format("zone {}: gfn {} on order-{} list is not a free head",
                                           name_, g.value(), o));
      }
      if ((g.value() & ((1U << o) - 1)) != 0) {
        throw std::logic_error(
            fmt::format("zone {}: block {} misaligned for order {}", name_, g.value(), o));
      }
      // A free block never has a free buddy of the same order (they would have merged).
      if (o < kMaxOrder - 1 && page_is_buddy(Gfn{g.value() ^ (1U << o)}, o)) {
        throw std::logic_error(fmt::format("zone {}: free buddies {} and {} left unmerged", name_,
                                           g.value(), g.value() ^ (1U << o)));
      }
      prev = node;
      ++n;
    }
    if (n != free_area_[o].count || prev != free_area_[o].tail) {
      throw std::logic_error("free list count or tail wrong");
    }
  }
  // Every Buddy-flagged page must be on its list (heads counted equal the list counts).
  std::uint64_t heads[kMaxOrder]{};
  for (std::uint32_t g = start_.value(); g < end().value(); ++g) {
    const PageMeta m = map_[Gfn{g}];
    if (m.state() == GuestPageState::kBuddy) ++heads[m.order().value()];
  }
  for (unsigned o = 0; o < kMaxOrder; ++o) {
    if (heads[o] != free_area_[o].count) throw std::logic_error("buddy heads not all on lists");
  }
}

}  // namespace memvirt
