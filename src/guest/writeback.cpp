// Dirty page accounting and writeback (mm/page-writeback.c, fs/fs-writeback.c): the dirty
// limits, writers throttled above them, and the flusher's background and periodic writeback.
#include <algorithm>
#include <numeric>

#include "guest/kernel.hpp"
#include "guest/kernel_internal.hpp"

namespace memvirt {

namespace {
constexpr std::uint64_t kMaxWritebackPages = 1024;  // MAX_WRITEBACK_PAGES per inode per pass
constexpr std::uint64_t kMaxRequestPages = 128;     // 512 KiB: max_sectors_kb of virtio-blk
}  // namespace

std::uint64_t GuestKernel::dirtyable_pages() const {
  // global_dirtyable_memory(): free pages and the file LRU, less the reserves (high marks).
  std::uint64_t reserve = 0;
  for (const auto& z : zones_) reserve += z->watermarks().high;
  const std::uint64_t free = free_pages() + pcp_pages();
  return (free > reserve ? free - reserve : 0) + lru_.size(LruList::kInactiveFile) +
         lru_.size(LruList::kActiveFile);
}

void GuestKernel::account_dirty(Gfn g, FileId id) {
  PageFlags f = flags(g);
  if (f.test(PageFlags::kDirty)) return;
  f.set(PageFlags::kDirty);
  set_flags(g, f);
  ++nr_dirty_;
  GuestFile& file = files_[id.value()];
  if (file.dirty++ == 0) file.dirtied_when = queue_->now();
  if (!flusher_scheduled_) {
    flusher_scheduled_ = true;
    queue_->after(cfg_.dirty_writeback, EventQueue::kDaemon, [this](TimePoint) {
      flusher_scheduled_ = false;
      flusher_run();
    });
  }
}

void GuestKernel::balance_dirty_pages(std::uint64_t* blocked) {
  const std::uint64_t dirtyable = dirtyable_pages();
  const std::uint64_t thresh = dirtyable * cfg_.dirty_ratio / 100;
  const std::uint64_t background = dirtyable * cfg_.dirty_background_ratio / 100;
  const std::uint64_t nr = nr_dirty_ + nr_writeback_;
  if (nr_dirty_ > background && !background_writeback_) wake_flusher();
  if (blocked != nullptr) {
    // A writer above the limit pauses until writeback brings the total back under the
    // freerun ceiling, halfway between the two limits (dirty_freerun_ceiling).
    if (nr > thresh) {
      *blocked = kDirtyThrottleWait;
      stats_.dirty_throttled.add();
    }
    return;
  }
  if (!dirty_waiters_.empty() && (nr <= (thresh + background) / 2 || nr_writeback_ == 0)) {
    auto waiters = std::move(dirty_waiters_);
    dirty_waiters_.clear();
    for (auto& fn : waiters) {
      queue_->after(Duration{0}, EventQueue::kGuest, [fn = std::move(fn)](TimePoint) { fn(); });
    }
  }
}

void GuestKernel::wake_flusher() {
  background_writeback_ = true;
  queue_->after(Duration{0}, EventQueue::kDaemon, [this](TimePoint) { flusher_run(); });
}

void GuestKernel::start_writeback(FileId id, std::uint64_t max_pages, bool /*expired_only*/) {
  // writeback_single_inode() -> write_cache_pages(): dirty pages in index order, in
  // requests of contiguous pages.
  GuestFile& f = files_[id.value()];
  if (!f.live || f.dirty == 0) return;
  std::uint64_t written = 0;
  std::vector<Gfn> run;
  std::uint64_t run_first = 0;
  const auto flush = [&] {
    if (run.empty()) return;
    stats_.sectors_written.add(run.size() * kSectorsPerPage);
    stats_.pages_written_back.add(run.size());
    const MappingId mapping = f.mapping;
    submit_io(true, f.first_sector + run_first * kSectorsPerPage, std::move(run),
              [this, mapping](Io& done) {
                for (const Gfn g : done.pages) {
                  PageFlags pf = flags(g);
                  const std::optional<MappingOwner> o = slots_.owner(g);
                  if (!o || o->mapping != mapping || !pf.test(PageFlags::kWriteback)) continue;
                  pf.set(PageFlags::kWriteback, false);
                  --nr_writeback_;
                  const bool rotate = pf.test(PageFlags::kReclaim) && !pf.test(PageFlags::kDirty);
                  pf.set(PageFlags::kReclaim, false);
                  set_flags(g, pf);
                  if (rotate && Lru::list_of(map_[g]) == LruList::kInactiveFile) {
                    lru_.add_tail(g, LruList::kInactiveFile);
                  }
                }
              });
    run.clear();
  };
  const std::uint64_t extent = std::min(f.pages, slots_.extent_pages(f.mapping));
  for (std::uint64_t page = 0; page < extent && written < max_pages; ++page) {
    const SlotEntry e = slots_.entry(f.mapping, page);
    if (e.kind() != SlotKind::kFrame) {
      flush();
      continue;
    }
    const Gfn g = e.gfn();
    PageFlags pf = flags(g);
    if (!pf.test(PageFlags::kDirty) || pf.test(PageFlags::kWriteback)) {
      flush();
      continue;
    }
    // clear_page_dirty_for_io() and set_page_writeback(); the disk gets the content now.
    pf.set(PageFlags::kDirty, false);
    pf.set(PageFlags::kWriteback);
    set_flags(g, pf);
    --nr_dirty_;
    --f.dirty;
    ++nr_writeback_;
    f.on_disk[page] = host_.peek(vm_, g);
    if (run.empty()) run_first = page;
    run.push_back(g);
    ++written;
    if (run.size() == kMaxRequestPages) flush();
  }
  flush();
}

void GuestKernel::flusher_run() {
  if (halted_) return;
  // wb_do_writeback(): background writeback while above the background limit, oldest
  // dirtied files first; then the periodic pass writes files dirty for dirty_expire.
  const std::uint64_t background = dirtyable_pages() * cfg_.dirty_background_ratio / 100;
  std::vector<std::uint32_t> order;
  for (std::uint32_t i = 0; i < files_.size(); ++i) {
    if (files_[i].live && files_[i].dirty > 0) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return files_[a].dirtied_when < files_[b].dirtied_when;
  });
  const TimePoint now = queue_->now();
  for (const std::uint32_t i : order) {
    const bool expired = files_[i].dirtied_when + cfg_.dirty_expire <= now;
    if (expired) {
      start_writeback(FileId{i}, UINT64_MAX, true);
    } else if (background_writeback_ && nr_dirty_ > background) {
      start_writeback(FileId{i}, kMaxWritebackPages, false);
    }
  }
  background_writeback_ = nr_dirty_ > background;
  if (background_writeback_) {
    queue_->after(Duration::millis(10), EventQueue::kDaemon, [this](TimePoint) { flusher_run(); });
  }
  if (nr_dirty_ > 0 && !flusher_scheduled_) {
    flusher_scheduled_ = true;
    queue_->after(cfg_.dirty_writeback, EventQueue::kDaemon, [this](TimePoint) {
      flusher_scheduled_ = false;
      flusher_run();
    });
  }
}

void GuestKernel::sync(std::function<void()> fn) {
  for (std::uint32_t i = 0; i < files_.size(); ++i) start_writeback(FileId{i}, UINT64_MAX, false);
  if (nr_writeback_ == 0 && nr_dirty_ == 0) {
    queue_->after(Duration{0}, EventQueue::kGuest, [fn = std::move(fn)](TimePoint) { fn(); });
    return;
  }
  sync_waiters_.push_back(std::move(fn));
}

}  // namespace memvirt
