// Swap (mm/swap_state.c, mm/swapfile.c, mm/page_io.c): slots on the swap partition, the
// swap cache, swap-out by reclaim and swap-in with readahead.
#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "guest/kernel.hpp"
#include "guest/kernel_internal.hpp"

namespace memvirt {

namespace {
std::optional<std::uint32_t> alloc_slot(auto& swap) {
  if (swap.used >= swap.slots) return std::nullopt;
  for (std::uint32_t k = 0; k < swap.slots; ++k) {
    const std::uint32_t s = (swap.cursor + k) % swap.slots;
    if (!swap.in_use[s]) {
      swap.in_use[s] = true;
      ++swap.used;
      swap.cursor = s + 1;
      return s;
    }
  }
  return std::nullopt;
}
}  // namespace

void GuestKernel::free_swap_slot(std::uint32_t slot) {
  if (!swap_->in_use[slot]) throw std::logic_error(fmt::format("swap slot {} freed twice", slot));
  swap_->in_use[slot] = false;
  --swap_->used;
  swap_->content[slot] = kZeroContent;
  for (PageHooks* h : map_.hooks) h->on_swap_free(slot);
}

void GuestKernel::delete_from_swap_cache(Gfn g) {
  // The page keeps its content and stays on its LRU list; its slot is freed when no page
  // table points at it, which is the case for a mapped page (its entry is the frame).
  const std::uint32_t slot = swap_->slot_of_frame.get(g.value()) - 1;
  swap_->slot_of_frame.set(g.value(), 0);
  swap_->cache.set(slot, 0);
  PageFlags f = flags(g);
  f.set(PageFlags::kSwapCache, false);
  f.set(PageFlags::kDirty);
  if (f.test(PageFlags::kWriteback)) {
    // Its swap write is still in flight and no longer matters to the page: the write's
    // completion finds it out of the swap cache and does nothing, so its writeback ends here.
    f.set(PageFlags::kWriteback, false);
    f.set(PageFlags::kReclaim, false);
    --nr_writeback_;
  }
  set_flags(g, f);
  --nr_swapcache_;
  if (f.test(PageFlags::kMapped)) free_swap_slot(slot);
}

void GuestKernel::free_swapcache_page(Gfn g) {
  const std::uint32_t slot = swap_->slot_of_frame.get(g.value()) - 1;
  swap_->slot_of_frame.set(g.value(), 0);
  swap_->cache.set(slot, 0);
  --nr_swapcache_;
  uninstall(g, 0);
}

void GuestKernel::start_swap_write(Gfn g, std::uint32_t slot, Fingerprint content) {
  // __swap_writepage(): the slot's disk copy is the page's content once the write is queued;
  // a read of the slot queues behind it on the disk.
  swap_->content[slot] = content;
  PageFlags f = flags(g);
  f.set(PageFlags::kDirty, false);
  f.set(PageFlags::kWriteback);
  f.set(PageFlags::kReclaim);
  set_flags(g, f);
  ++nr_writeback_;
  stats_.pswpout.add();
  stats_.sectors_written.add(kSectorsPerPage);
  submit_io(true, swap_->first_sector + std::uint64_t{slot} * kSectorsPerPage, {g},
            [this, slot](Io& done) {
              const Gfn page_frame = done.pages.front();
              PageFlags pf = flags(page_frame);
              if (map_[page_frame].state() != GuestPageState::kInUse ||
                  !pf.test(PageFlags::kWriteback) ||
                  swap_->slot_of_frame.get(page_frame.value()) != slot + 1) {
                return;
              }
              pf.set(PageFlags::kWriteback, false);
              --nr_writeback_;
              const bool rotate = pf.test(PageFlags::kReclaim);
              pf.set(PageFlags::kReclaim, false);
              set_flags(page_frame, pf);
              // end_page_writeback(): reclaim wanted it, so it goes to the tail.
              if (rotate && Lru::list_of(map_[page_frame]) == LruList::kInactiveAnon) {
                lru_.add_tail(page_frame, LruList::kInactiveAnon);
              }
            });
}

void GuestKernel::add_to_swap_cache(Gfn g, std::uint32_t slot) {
  swap_->cache.set(slot, SlotEntry::frame(g).raw());
  swap_->slot_of_frame.set(g.value(), slot + 1);
  ++nr_swapcache_;
}

std::optional<Fingerprint> GuestKernel::frontswap_load(std::uint32_t slot) {
  for (PageHooks* h : map_.hooks) {
    if (std::optional<Fingerprint> hit = h->on_swap_in(slot)) return hit;
  }
  return std::nullopt;
}

bool GuestKernel::swap_out(Gfn g, MappingId m, std::uint64_t page) {
  // add_to_swap(), try_to_unmap() and pageout() of shrink_page_list.
  PageFlags f = flags(g);
  const bool in_swap_cache = f.test(PageFlags::kSwapCache);
  std::uint32_t slot = 0;
  if (in_swap_cache) {
    // Read from swap and not written since: its slot still holds it, so unmapping it is all.
    slot = swap_->slot_of_frame.get(g.value()) - 1;
  } else {
    const std::optional<std::uint32_t> fresh = alloc_slot(*swap_);
    if (!fresh) return false;
    slot = *fresh;
    f.set(PageFlags::kSwapCache);
    add_to_swap_cache(g, slot);
  }
  f.set(PageFlags::kMapped, false);
  set_flags(g, f);
  slots_.set(m, page, SlotEntry::make(SlotKind::kSwap, slot));
  swap_->user[slot] = MappingOwner{m, page};
  --nr_mapped_;
  --processes_[slots_.owner_of_mapping(m)].rss_pages;
  vcpu_.charge(costs_.cost(Op::kKernelPteUpdate));
  if (in_swap_cache) return true;
  const Fingerprint content = host_.peek(vm_, g);
  for (PageHooks* h : map_.hooks) {
    if (h->on_swap_out(slot, content)) {
      f.set(PageFlags::kDirty, false);
      set_flags(g, f);  // frontswap holds it: clean, freed on reclaim's next pass
      return true;
    }
  }
  start_swap_write(g, slot, content);
  return true;
}

std::optional<Gfn> GuestKernel::alloc_page_in_reclaim(unsigned cpu) {
  // PF_MEMALLOC: an allocation made to free memory may use the reserves below every
  // watermark (ALLOC_NO_WATERMARKS).
  for (auto it = zones_.rbegin(); it != zones_.rend(); ++it) {
    const Gfn g = (*it)->rmqueue(cpu, 0);
    if (g == Zone::kNoPage) continue;
    stats_.pages_allocated.add();
    for (PageHooks* h : map_.hooks) h->on_alloc(g, PageOrder{0});
    return g;
  }
  return std::nullopt;
}

bool GuestKernel::write_back_swap_slot(std::uint32_t slot, Fingerprint content) {
  if (!swap_ || slot >= swap_->slots || !swap_->in_use[slot]) {
    throw std::logic_error(fmt::format("write-back of swap slot {}, which is not in use", slot));
  }
  // zswap_get_swap_cache_page(): a slot whose page is in the swap cache is left alone.
  if (swap_->cache.get(slot) != 0) return false;
  const std::optional<Gfn> g = alloc_page_in_reclaim(0);
  if (!g) return false;
  host_.write(vm_, *g, content);
  PageFlags f;
  f.set(PageFlags::kSwapBacked);
  f.set(PageFlags::kSwapCache);
  set_flags(*g, f);
  lru_.add(*g, LruList::kInactiveAnon);
  ++nr_anon_;
  add_to_swap_cache(*g, slot);
  start_swap_write(*g, slot, content);
  return true;
}

std::uint64_t GuestKernel::unuse_frontswap(std::uint64_t pages) {
  // try_to_unuse(type, frontswap = true, pages): slot by slot, a page frontswap holds is read
  // back (frontswap_load), its page table entry set to it and its slot freed (which
  // invalidates frontswap's copy). Pages come without reclaim; none free ends the pass.
  if (!swap_) return 0;
  std::uint64_t done = 0;
  for (std::uint32_t s = 0; s < swap_->slots && done < pages; ++s) {
    if (!swap_->in_use[s] || swap_->cache.get(s) != 0) continue;
    if (std::none_of(map_.hooks.begin(), map_.hooks.end(),
                     [s](const PageHooks* h) { return h->in_frontswap(s); })) {
      continue;
    }
    const MappingOwner o = swap_->user[s];
    const SlotEntry e = slots_.entry(o.mapping, o.page);
    if (e.kind() != SlotKind::kSwap || e.payload() != s) continue;  // not mapped by a PTE
    const std::optional<Gfn> g = try_alloc_pages(0, 0);
    if (!g) break;
    const std::optional<Fingerprint> content = frontswap_load(s);
    if (!content) throw std::logic_error("frontswap holds a slot it cannot load");
    host_.write(vm_, *g, *content);
    slots_.set(o.mapping, o.page, SlotEntry{});
    free_swap_slot(s);
    PageFlags f;
    f.set(PageFlags::kSwapBacked);
    f.set(PageFlags::kMapped);
    f.set(PageFlags::kDirty);
    install(*g, o.mapping, o.page, f, LruList::kInactiveAnon);
    ++processes_[slots_.owner_of_mapping(o.mapping)].rss_pages;
    vcpu_.charge(costs_.cost(Op::kKernelPteUpdate));
    ++done;
  }
  return done;
}

std::uint64_t GuestKernel::swap_in(MappingId m, std::uint64_t page, std::uint32_t slot,
                                   unsigned cpu) {
  Process& owner = processes_[slots_.owner_of_mapping(m)];
  const auto map_in = [&](Gfn g) {
    PageFlags f = flags(g);
    f.set(PageFlags::kMapped);
    f.set(PageFlags::kYoung);
    set_flags(g, f);
    ++nr_mapped_;
    ++owner.rss_pages;
    slots_.set(m, page, SlotEntry::frame(g));
    // vm_swap_full(): with more than half of swap used, a page swapped in gives its slot up.
    // Otherwise the slot stays with the page until it is written again (the PTE now holds
    // the frame).
    if (swap_->used * 2 > swap_->slots && f.test(PageFlags::kSwapCache) &&
        !f.test(PageFlags::kWriteback)) {
      delete_from_swap_cache(g);
    }
  };
  if (const std::uint32_t cached = swap_->cache.get(slot); cached != 0) {
    const Gfn g = SlotEntry{cached}.gfn();
    if (flags(g).test(PageFlags::kLocked)) {
      for (const auto& [id, io] : io_) {
        if (std::find(io->pages.begin(), io->pages.end(), g) != io->pages.end()) return id;
      }
    }
    map_in(g);
    return 0;
  }
  // swapin_readahead(): the aligned cluster of 2^page_cluster slots around the one wanted.
  // Each page is read by swap_readpage(), which asks frontswap first: a page it holds needs
  // no disk (and frontswap keeps its copy, as the slot does).
  const std::uint32_t cluster = 1U << cfg_.page_cluster;
  const std::uint32_t start = slot & ~(cluster - 1);
  const std::uint32_t end = std::min(swap_->slots, start + cluster);
  std::uint64_t wait = 0;
  std::vector<Gfn> run;
  std::uint32_t run_first = 0;
  const auto flush = [&] {
    if (run.empty()) return;
    stats_.sectors_read.add(run.size() * kSectorsPerPage);
    const std::uint64_t io =
        submit_io(false, swap_->first_sector + std::uint64_t{run_first} * kSectorsPerPage,
                  std::move(run), [this](Io& done) {
                    for (const Gfn g : done.pages) {
                      const PageFlags f = flags(g);
                      if (map_[g].state() != GuestPageState::kInUse ||
                          !f.test(PageFlags::kLocked) || !f.test(PageFlags::kSwapCache)) {
                        continue;
                      }
                      const std::uint32_t s = swap_->slot_of_frame.get(g.value()) - 1;
                      host_.write(vm_, g, swap_->content[s]);
                      PageFlags unlocked = f;
                      unlocked.set(PageFlags::kLocked, false);
                      set_flags(g, unlocked);
                    }
                  });
    if (wait == 0) wait = io;
    run.clear();
  };
  for (std::uint32_t s = start; s < end; ++s) {
    if (!swap_->in_use[s] || swap_->cache.get(s) != 0) {
      flush();
      continue;
    }
    std::optional<Gfn> g;
    if (s == slot) {
      std::uint64_t blocked = 0;
      g = alloc_pages(cpu, 0, &blocked);
      if (!g) {
        flush();
        return blocked != 0 ? blocked : (wait != 0 ? wait : last_io_);
      }
    } else {
      g = try_alloc_pages(cpu, 0);
      if (!g) {
        flush();
        continue;
      }
    }
    PageFlags f;
    f.set(PageFlags::kSwapBacked);
    f.set(PageFlags::kSwapCache);
    f.set(PageFlags::kLocked);
    set_flags(*g, f);
    lru_.add(*g, LruList::kInactiveAnon);
    ++nr_anon_;
    add_to_swap_cache(*g, s);
    if (const std::optional<Fingerprint> hit = frontswap_load(s)) {
      host_.write(vm_, *g, *hit);
      PageFlags loaded = flags(*g);  // the LRU's bits included
      loaded.set(PageFlags::kLocked, false);
      set_flags(*g, loaded);
      flush();
      continue;
    }
    stats_.pswpin.add();
    if (run.empty()) run_first = s;
    run.push_back(*g);
  }
  flush();
  if (const std::uint32_t cached = swap_->cache.get(slot);
      cached != 0 && !flags(SlotEntry{cached}.gfn()).test(PageFlags::kLocked)) {
    map_in(SlotEntry{cached}.gfn());  // frontswap had it
    return 0;
  }
  return wait != 0 ? wait : last_io_;
}

}  // namespace memvirt
