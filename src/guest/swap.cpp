// Swap (mm/swap_state.c, mm/swapfile.c, mm/page_io.c): slots on the swap partition, the
// swap cache, swap-out by reclaim and swap-in with readahead.
#include <fmt/format.h>

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

bool GuestKernel::swap_out(Gfn g, MappingId m, std::uint64_t page) {
  // add_to_swap(), try_to_unmap() and pageout() of shrink_page_list.
  const std::optional<std::uint32_t> slot = alloc_slot(*swap_);
  if (!slot) return false;
  PageFlags f = flags(g);
  f.set(PageFlags::kSwapCache);
  f.set(PageFlags::kMapped, false);
  set_flags(g, f);
  swap_->cache.set(*slot, SlotEntry::frame(g).raw());
  swap_->slot_of_frame.set(g.value(), *slot + 1);
  ++nr_swapcache_;
  slots_.set(m, page, SlotEntry::make(SlotKind::kSwap, *slot));
  --nr_mapped_;
  --processes_[slots_.owner_of_mapping(m)].rss_pages;
  vcpu_.charge(costs_.cost(Op::kKernelPteUpdate));
  const Fingerprint content = host_.peek(vm_, g);
  stats_.pswpout.add();
  f.set(PageFlags::kDirty, false);
  for (PageHooks* h : map_.hooks) {
    if (h->on_swap_out(*slot, content)) {
      set_flags(g, f);  // frontswap holds it: clean, freed on reclaim's next pass
      return true;
    }
  }
  swap_->content[*slot] = content;
  f.set(PageFlags::kWriteback);
  f.set(PageFlags::kReclaim);
  set_flags(g, f);
  ++nr_writeback_;
  stats_.sectors_written.add(kSectorsPerPage);
  const std::uint32_t s = *slot;
  submit_io(
      true, swap_->first_sector + std::uint64_t{s} * kSectorsPerPage, {g}, [this, s](Io& done) {
        const Gfn page_frame = done.pages.front();
        PageFlags pf = flags(page_frame);
        if (map_[page_frame].state() != GuestPageState::kInUse || !pf.test(PageFlags::kWriteback) ||
            swap_->slot_of_frame.get(page_frame.value()) != s + 1) {
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
  return true;
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
    if (swap_->used * 2 > swap_->slots && f.test(PageFlags::kSwapCache) &&
        !f.test(PageFlags::kWriteback)) {
      delete_from_swap_cache(g);
    } else if (f.test(PageFlags::kSwapCache)) {
      // The slot stays with the page until it is written again (the PTE now holds the frame).
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
  // frontswap_load(): a hit needs no disk; the page comes back dirty and the slot goes.
  for (PageHooks* h : map_.hooks) {
    if (const std::optional<Fingerprint> hit = h->on_swap_in(slot)) {
      std::uint64_t wait = 0;
      const std::optional<Gfn> g = alloc_pages(cpu, 0, &wait);
      if (!g) return wait != 0 ? wait : last_io_;
      host_.write(vm_, *g, *hit);
      slots_.set(m, page, SlotEntry{});
      free_swap_slot(slot);
      PageFlags f;
      f.set(PageFlags::kSwapBacked);
      f.set(PageFlags::kMapped);
      f.set(PageFlags::kYoung);
      f.set(PageFlags::kDirty);
      install(*g, m, page, f, LruList::kInactiveAnon);
      ++owner.rss_pages;
      stats_.pswpin.add();
      return 0;
    }
  }
  // swapin_readahead(): the aligned cluster of 2^page_cluster slots around the one wanted.
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
    ++nr_swapcache_;
    swap_->cache.set(s, SlotEntry::frame(*g).raw());
    swap_->slot_of_frame.set(g->value(), s + 1);
    stats_.pswpin.add();
    if (run.empty()) run_first = s;
    run.push_back(*g);
  }
  flush();
  return wait != 0 ? wait : last_io_;
}

}  // namespace memvirt
