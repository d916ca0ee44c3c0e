// Files and the page cache (mm/filemap.c, mm/readahead.c, mm/truncate.c), and the kernel's
// disk requests.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <stdexcept>

#include "guest/kernel.hpp"
#include "guest/kernel_internal.hpp"

namespace memvirt {

FileId GuestKernel::create_file(Bytes size, std::uint64_t content, Bytes reserve,
                                ContentClass cls) {
  if (disk_ == nullptr) throw std::logic_error("the guest has no disk for files");
  GuestFile f;
  f.live = true;
  f.pages = size.pages();
  f.content = content;
  f.content_class = cls;
  f.extent_pages = std::max(f.pages, reserve.pages());
  const std::uint64_t sectors = f.extent_pages * kSectorsPerPage;
  // The first freed extent that holds it (space of unlinked files), else the end.
  const auto fit = std::find_if(free_extents_.begin(), free_extents_.end(),
                                [&](const auto& e) { return e.second >= sectors; });
  if (fit != free_extents_.end()) {
    f.first_sector = fit->first;
    fit->first += sectors;
    fit->second -= sectors;
    if (fit->second == 0) free_extents_.erase(fit);
  } else {
    if (fs_next_sector_ + sectors > fs_sectors_) {
      throw std::length_error(
          fmt::format("the guest's filesystem ({} MiB) has no room for a file of {} MiB",
                      fs_sectors_ * kSectorSize >> 20, f.extent_pages * kPageSize >> 20));
    }
    f.first_sector = fs_next_sector_;
    fs_next_sector_ += sectors;
  }
  const auto id = FileId{static_cast<std::uint32_t>(files_.size())};
  f.mapping = slots_.create(MappingKind::kFile, id.value());
  files_.push_back(std::move(f));
  return id;
}

Fingerprint GuestKernel::image_content(const GuestFile& f, std::uint64_t page) const {
  if (const auto it = f.on_disk.find(page); it != f.on_disk.end()) return it->second;
  if (f.content == 0) return kZeroContent;
  return make_fingerprint(image_page_hash(f.content, page), f.content_class);
}

Fingerprint GuestKernel::file_content(FileId id, std::uint64_t page) const {
  const GuestFile& f = files_[id.value()];
  const SlotEntry e = slots_.entry(f.mapping, page);
  if (e.kind() == SlotKind::kFrame && !flags(e.gfn()).test(PageFlags::kLocked)) {
    return host_.peek(vm_, e.gfn());
  }
  return image_content(f, page);
}

void GuestKernel::mark_accessed(Gfn g) {
  // mark_page_accessed(): inactive,unreferenced -> inactive,referenced -> active.
  PageFlags f = flags(g);
  const LruList l = static_cast<LruList>(f.list());
  if (f.test(PageFlags::kReferenced) && l == LruList::kInactiveFile) {
    f.set(PageFlags::kReferenced, false);
    set_flags(g, f);
    lru_.add(g, LruList::kActiveFile);
    ++eviction_clock_;  // workingset_activation
  } else if (!f.test(PageFlags::kReferenced)) {
    f.set(PageFlags::kReferenced);
    set_flags(g, f);
  }
}

std::uint64_t GuestKernel::readahead(FileId id, std::uint64_t first, std::uint64_t n, unsigned cpu,
                                     std::uint64_t needed, std::uint64_t* blocked) {
  GuestFile& f = files_[id.value()];
  // ondemand_readahead(): a read that continues the previous one doubles the window up to
  // read_ahead_kb; any other miss starts a window of four times the request (rounded to a
  // power of two, get_init_ra_size), capped at the maximum.
  const std::uint64_t max = std::max<std::uint64_t>(cfg_.read_ahead_pages, 1);
  if (first == f.ra_next && f.ra_window > 0) {
    f.ra_window = std::min(max, f.ra_window * 2);
  } else {
    f.ra_window = std::min(max, std::bit_ceil(std::max<std::uint64_t>(n, 1)) * 4);
  }
  const std::uint64_t window = std::max(n, f.ra_window);
  const std::uint64_t end = std::min(f.pages, first + window);
  f.ra_next = end;
  std::uint64_t wait = 0;
  std::vector<Gfn> run;
  std::uint64_t run_first = 0;
  const auto flush = [&] {
    if (run.empty()) return;
    const std::uint64_t sector = f.first_sector + run_first * kSectorsPerPage;
    stats_.sectors_read.add(run.size() * kSectorsPerPage);
    const std::uint64_t io = submit_io(false, sector, std::move(run), [this, id](Io& done) {
      GuestFile& file = files_[id.value()];
      for (const Gfn g : done.pages) {
        // A page truncated while it was read was freed and may serve another owner now.
        const std::optional<MappingOwner> o = slots_.owner(g);
        if (!o || o->mapping != file.mapping || !flags(g).test(PageFlags::kLocked)) continue;
        host_.write(vm_, g, image_content(file, o->page));
        PageFlags pf = flags(g);
        pf.set(PageFlags::kLocked, false);
        set_flags(g, pf);
      }
    });
    if (wait == 0) wait = io;
    run.clear();
  };
  for (std::uint64_t page = first; page < end; ++page) {
    const SlotEntry e = slots_.entry(f.mapping, page);
    if (e.kind() == SlotKind::kFrame) {
      flush();
      continue;
    }
    // Readahead allocations give up rather than reclaim (__GFP_NORETRY); the needed page may
    // not (filemap_create_folio with the mapping's gfp mask).
    const std::optional<Gfn> g =
        page == needed ? alloc_pages(cpu, 0, blocked) : try_alloc_pages(cpu, 0);
    if (!g) break;
    PageFlags pf;
    LruList list = LruList::kInactiveFile;
    if (e.kind() == SlotKind::kShadow) {
      // workingset_refault(): the refault distance is the evictions and activations since
      // this page was evicted; a page that would have stayed resident with that much more
      // inactive space is activated at once.
      stats_.refaults.add();
      const std::uint64_t distance = (eviction_clock_ - e.payload()) & SlotEntry::kPayloadMask;
      if (cfg_.workingset && distance <= lru_.size(LruList::kActiveFile)) {
        list = LruList::kActiveFile;
        pf.set(PageFlags::kWorkingset);
        stats_.refault_activations.add();
        ++eviction_clock_;
      }
    }
    // cleancache_get_page() before the disk: a hit fills the page at once.
    std::optional<Fingerprint> hit;
    for (PageHooks* h : map_.hooks) {
      if ((hit = h->on_cache_miss(FileKey{0, id.value()}, page))) break;
    }
    if (!hit) pf.set(PageFlags::kLocked);
    install(*g, f.mapping, page, pf, list);
    ++f.cached;
    if (hit) {
      host_.write(vm_, *g, *hit);
      flush();
      continue;
    }
    if (run.empty()) run_first = page;
    run.push_back(*g);
  }
  flush();
  return wait;
}

TouchResult GuestKernel::read_file(std::uint32_t pid, FileId id, std::uint64_t first,
                                   std::uint64_t pages, unsigned cpu) {
  TouchResult result;
  proc(pid);
  const GuestFile& f = files_[id.value()];
  const CpuTime copy = costs_.cost(Op::kPageCacheReadPage);
  const std::uint64_t end = std::min(f.pages, first + pages);
  for (std::uint64_t page = first; page < end; ++page) {
    SlotEntry e = slots_.entry(f.mapping, page);
    if (e.kind() != SlotKind::kFrame) {
      std::uint64_t blocked = 0;
      const std::uint64_t wait = readahead(id, page, end - page, cpu, page, &blocked);
      if (!processes_[pid].alive) {
        result.status = TouchStatus::kKilled;  // the OOM killer chose the reader
        break;
      }
      e = slots_.entry(f.mapping, page);
      if (e.kind() != SlotKind::kFrame) {
        // Not even the page the read needs: its allocation waits for writeback, or found
        // nothing the OOM killer could take.
        result.status = blocked != 0 ? TouchStatus::kBlocked : TouchStatus::kOutOfMemory;
        result.wait = blocked;
        stall_on(blocked);
        break;
      }
      if (wait != 0 && flags(e.gfn()).test(PageFlags::kLocked)) {
        result.status = TouchStatus::kBlocked;  // read(2) waits: not a fault (pgmajfault)
        result.wait = wait;
        if (flags(e.gfn()).test(PageFlags::kWorkingset)) stall_on(wait);  // thrashing
        break;
      }
    }
    const Gfn g = e.gfn();
    if (flags(g).test(PageFlags::kLocked)) {
      // Read by someone else's readahead, still in flight.
      result.status = TouchStatus::kBlocked;
      result.wait = io_reading(g);
      if (flags(g).test(PageFlags::kWorkingset)) stall_on(result.wait);
      break;
    }
    mark_accessed(g);
    host_.read(vm_, g);
    result.guest += copy;
    ++result.pages;
  }
  vcpu_.charge(result.guest);
  return result;
}

TouchResult GuestKernel::write_file(std::uint32_t pid, FileId id, std::uint64_t first,
                                    std::uint64_t pages, const ContentFn& content, unsigned cpu) {
  TouchResult result;
  proc(pid);
  const CpuTime copy = costs_.cost(Op::kPageCacheWritePage);
  for (std::uint64_t k = 0; k < pages; ++k) {
    GuestFile& f = files_[id.value()];
    const std::uint64_t page = first + k;
    if (page >= f.extent_pages) {
      throw std::length_error(
          fmt::format("write past the {} pages reserved for file {}", f.extent_pages, id.value()));
    }
    SlotEntry e = slots_.entry(f.mapping, page);
    if (e.kind() != SlotKind::kFrame) {
      // A whole-page write needs no read (generic_perform_write with a full page).
      std::uint64_t wait = 0;
      const std::optional<Gfn> g = alloc_pages(cpu, 0, &wait);
      if (!g) {
        result.status = wait != 0 ? TouchStatus::kBlocked : TouchStatus::kOutOfMemory;
        result.wait = wait;
        stall_on(wait);
        break;
      }
      GuestFile& again = files_[id.value()];
      if (e.kind() == SlotKind::kShadow) stats_.refaults.add();
      install(*g, again.mapping, page, PageFlags{}, LruList::kInactiveFile);
      ++again.cached;
      e = SlotEntry::frame(*g);
    }
    GuestFile& file = files_[id.value()];
    if (page >= file.pages) file.pages = page + 1;
    const Gfn g = e.gfn();
    host_.write(vm_, g, content(page));
    mark_accessed(g);
    account_dirty(g, id);
    result.guest += copy;
    ++result.pages;
  }
  vcpu_.charge(result.guest);
  if (result.status == TouchStatus::kDone) {
    std::uint64_t wait = 0;
    balance_dirty_pages(&wait);
    if (wait != 0) {
      result.status = TouchStatus::kBlocked;
      result.wait = wait;
    }
  }
  return result;
}

void GuestKernel::evict_file_page(Gfn g, MappingId m, std::uint64_t page) {
  // try_to_unmap(), then __remove_mapping(): the page leaves the page cache, leaving a
  // shadow entry (workingset_eviction) when refault detection is on; cleancache_put_page()
  // sees it first.
  const FileId id = file_of(m);
  unmap_everywhere(id, page, g);
  for (PageHooks* h : map_.hooks) {
    h->on_cache_evict(FileKey{0, id.value()}, page, host_.peek(vm_, g));
  }
  slots_.set(m, page,
             cfg_.workingset
                 ? SlotEntry::make(SlotKind::kShadow, static_cast<std::uint32_t>(eviction_clock_))
                 : SlotEntry{});
  ++eviction_clock_;
  --files_[id.value()].cached;
  uninstall(g, 0);
}

void GuestKernel::drop_file_page(FileId id, std::uint64_t page, unsigned cpu) {
  GuestFile& f = files_[id.value()];
  const SlotEntry e = slots_.entry(f.mapping, page);
  if (e.kind() == SlotKind::kNone) return;
  for (PageHooks* h : map_.hooks) h->on_invalidate_page(FileKey{0, id.value()}, page);
  slots_.set(f.mapping, page, SlotEntry{});
  if (e.kind() != SlotKind::kFrame) return;
  const Gfn g = e.gfn();
  unmap_everywhere(id, page, g);  // truncate_pagecache's unmap_mapping_range
  const PageFlags pf = flags(g);
  if (pf.test(PageFlags::kDirty)) {
    --nr_dirty_;
    --f.dirty;
  }
  if (pf.test(PageFlags::kWriteback)) --nr_writeback_;
  --f.cached;
  uninstall(g, cpu);
}

void GuestKernel::truncate(FileId id, std::uint64_t pages) {
  GuestFile& f = files_[id.value()];
  const std::uint64_t extent = slots_.extent_pages(f.mapping);
  for (std::uint64_t page = pages; page < extent; ++page) drop_file_page(id, page, 0);
  for (auto it = f.on_disk.begin(); it != f.on_disk.end();) {
    it = it->first >= pages ? f.on_disk.erase(it) : std::next(it);
  }
  f.pages = std::min(f.pages, pages);
  if (f.ra_next > f.pages) f.ra_next = f.ra_window = 0;
}

void GuestKernel::unlink(FileId id) {
  truncate(id, 0);
  GuestFile& f = files_[id.value()];
  for (PageHooks* h : map_.hooks) h->on_invalidate_file(FileKey{0, id.value()});
  slots_.release(f.mapping);
  f.live = false;
  f.on_disk.clear();
  release_extent(f.first_sector, f.extent_pages * kSectorsPerPage);
  f.extent_pages = 0;
}

void GuestKernel::umount(std::function<void()> fn) {
  for (const GuestFile& f : files_) {
    if (f.live && !f.mappers.empty()) throw std::logic_error("umount of a filesystem in use");
  }
  sync([this, fn = std::move(fn)] {
    if (halted_) return;
    // generic_shutdown_super(): evict_inodes, truncate_inode_pages_final for each file.
    for (std::uint32_t i = 0; i < files_.size(); ++i) {
      GuestFile& f = files_[i];
      if (!f.live) continue;
      const std::uint64_t extent = slots_.extent_pages(f.mapping);
      for (std::uint64_t page = 0; page < extent; ++page) drop_file_page(FileId{i}, page, 0);
      for (PageHooks* h : map_.hooks) h->on_invalidate_file(FileKey{0, i});
      f.ra_next = f.ra_window = 0;
    }
    for (PageHooks* h : map_.hooks) h->on_invalidate_fs(0);
    fn();
  });
}

void GuestKernel::release_extent(std::uint64_t first, std::uint64_t sectors) {
  if (sectors == 0) return;
  // Kept sorted and merged with its neighbours; a free extent at the end gives its space back.
  auto it = std::lower_bound(free_extents_.begin(), free_extents_.end(),
                             std::pair{first, std::uint64_t{0}});
  it = free_extents_.insert(it, {first, sectors});
  if (const auto next = std::next(it);
      next != free_extents_.end() && it->first + it->second == next->first) {
    it->second += next->second;
    free_extents_.erase(next);
  }
  if (it != free_extents_.begin()) {
    const auto prev = std::prev(it);
    if (prev->first + prev->second == it->first) {
      prev->second += it->second;
      it = free_extents_.erase(it);
      it = std::prev(it);
    }
  }
  if (it->first + it->second == fs_next_sector_) {
    fs_next_sector_ = it->first;
    free_extents_.erase(it);
  }
}

std::uint64_t GuestKernel::submit_io(bool write, std::uint64_t sector, std::vector<Gfn> pages,
                                     std::function<void(Io&)> on_done) {
  const std::uint64_t id = next_io_++;
  auto io = std::make_unique<Io>();
  io->id = id;
  io->write = write;
  const auto sectors = static_cast<std::uint32_t>(pages.size() * kSectorsPerPage);
  io->pages = std::move(pages);
  io->on_done = std::move(on_done);
  io_.emplace(id, std::move(io));
  last_io_ = id;
  disk_->submit(BlockRequest{write, sector, sectors, [this, id](TimePoint) { complete_io(id); }});
  return id;
}

void GuestKernel::complete_io(std::uint64_t id) {
  if (halted_) return;
  const auto it = io_.find(id);
  if (it == io_.end()) return;
  std::unique_ptr<Io> io = std::move(it->second);
  io_.erase(it);
  end_stalls(id);
  io->on_done(*io);
  if (last_io_ == id) last_io_ = io_.empty() ? 0 : io_.begin()->first;
  wake_io_waiters(id);
  // Writeback finishing can bring dirty and writeback pages below the limits.
  if (io->write && !dirty_waiters_.empty()) balance_dirty_pages(nullptr);
  if (io->write && nr_writeback_ == 0 && nr_dirty_ == 0 && !sync_waiters_.empty()) {
    auto waiters = std::move(sync_waiters_);
    sync_waiters_.clear();
    for (auto& fn : waiters) fn();
  }
}

void GuestKernel::stall_on(std::uint64_t io) {
  if (io == 0 || queue_ == nullptr || !io_.contains(io)) return;
  if (stalled_++ == 0) stall_since_ = queue_->now();
  ++io_stalls_[io];
}

void GuestKernel::end_stalls(std::uint64_t io) {
  const auto it = io_stalls_.find(io);
  if (it == io_stalls_.end()) return;
  stalled_ -= it->second;
  io_stalls_.erase(it);
  if (stalled_ == 0) stall_waited_ = stall_waited_ + (queue_->now() - stall_since_);
}

Duration GuestKernel::memory_stall() const {
  Duration waited = stall_waited_;
  if (stalled_ > 0) waited = waited + (queue_->now() - stall_since_);
  return waited + stall_cpu_.duration();
}

void GuestKernel::wake_io_waiters(std::uint64_t id) {
  const auto it = io_waiters_.find(id);
  if (it == io_waiters_.end()) return;
  auto waiters = std::move(it->second);
  io_waiters_.erase(it);
  for (auto& fn : waiters) fn();
}

void GuestKernel::when_done(std::uint64_t wait, std::function<void()> fn) {
  if (io_.contains(wait)) {
    io_waiters_[wait].push_back(std::move(fn));
    return;
  }
  if (wait == kDirtyThrottleWait) {
    dirty_waiters_.push_back(std::move(fn));
    return;
  }
  queue_->after(Duration{0}, EventQueue::kGuest, [fn = std::move(fn)](TimePoint) { fn(); });
}

}  // namespace memvirt
