// Page reclaim (mm/vmscan.c, Linux 4.x split LRU without multi-gen LRU): kswapd and direct
// reclaim, get_scan_count's anon/file balance, the active list's aging and shrink_page_list.
#include <algorithm>
#include <cmath>

#include "guest/kernel.hpp"
#include "guest/kernel_internal.hpp"

namespace memvirt {

namespace {
constexpr std::uint64_t kSwapClusterMax = 32;  // SWAP_CLUSTER_MAX
constexpr int kDefPriority = 12;               // DEF_PRIORITY
// congestion_wait(BLK_RW_ASYNC, HZ/10): how long kswapd sleeps when it only met writeback.
constexpr Duration kCongestionWait = Duration::millis(100);
}  // namespace

bool GuestKernel::zones_balanced(bool high) const {
  for (const auto& z : zones_) {
    const Watermarks& w = z->watermarks();
    if (z->free_pages() < (high ? w.high : w.low)) return false;
  }
  return true;
}

void GuestKernel::wake_kswapd() {
  if (queue_ == nullptr || halted_ || kswapd_running_) return;
  if (lru_.size(LruList::kInactiveFile) + lru_.size(LruList::kActiveFile) == 0 && !has_swap()) {
    return;  // nothing kswapd could reclaim: it would scan empty lists and sleep again
  }
  kswapd_running_ = true;
  stats_.kswapd_wakeups.add();
  queue_->after(Duration{0}, EventQueue::kDaemon, [this](TimePoint) { kswapd_run(); });
}

void GuestKernel::kswapd_run() {
  if (halted_) return;
  // balance_pgdat(): reclaim in SWAP_CLUSTER_MAX batches until every zone is above its high
  // watermark. kswapd is a kernel thread: each pass's work runs on the guest's vCPUs, shared
  // with its processes, before the next pass or its sleep.
  const CpuTime before = vcpu_.busy();
  std::uint64_t freed = 0;
  for (int pass = 0; pass < 16 && !zones_balanced(true); ++pass) {
    const std::uint64_t got = reclaim(kSwapClusterMax, false);
    freed += got;
    if (got == 0) break;
  }
  const CpuTime spent{vcpu_.busy().ps - before.ps};
  enum class Next : std::uint8_t { kAgain, kCongested, kSleep };
  Next next = Next::kSleep;
  if (!zones_balanced(true)) {
    if (freed > 0) {
      next = Next::kAgain;
    } else if (!io_.empty()) {
      next = Next::kCongested;  // it met only pages under writeback
    }
  }
  // A pass that made progress takes at least a microsecond, so that kswapd never loops at
  // one instant.
  const CpuTime occupied = next == Next::kAgain ? std::max(spent, CpuTime{1'000'000}) : spent;
  run(kswapd_pid_, occupied, [this, next] {
    switch (next) {
      case Next::kAgain:
        kswapd_run();
        return;
      case Next::kCongested:
        queue_->after(kCongestionWait, EventQueue::kDaemon, [this](TimePoint) { kswapd_run(); });
        return;
      case Next::kSleep:
        kswapd_running_ = false;  // balanced, or nothing left to reclaim: asleep until woken
        return;
    }
  });
}

std::uint64_t GuestKernel::reclaim(std::uint64_t pages, bool direct) {
  // psi_memstall_enter() in kswapd's balance_pgdat() and around direct reclaim: the CPU
  // time of reclaim is memory stall time.
  const CpuTime before = vcpu_.busy();
  std::uint64_t freed = 0;
  for (int priority = kDefPriority; priority >= 0 && freed < pages; --priority) {
    freed += shrink_node(pages - freed, direct, priority);
  }
  stall_cpu_ = stall_cpu_ + CpuTime{vcpu_.busy().ps - before.ps};
  return freed;
}

bool GuestKernel::inactive_is_low(bool file) const {
  if (file) return lru_.size(LruList::kInactiveFile) < lru_.size(LruList::kActiveFile);
  // inactive_list_is_low() for anon: inactive_ratio = int_sqrt(10 x GiB), 1 below 1 GiB.
  const std::uint64_t inactive = lru_.size(LruList::kInactiveAnon);
  const std::uint64_t active = lru_.size(LruList::kActiveAnon);
  const std::uint64_t gib = ((inactive + active) * kPageSize) >> 30;
  const auto ratio =
      gib > 0 ? static_cast<std::uint64_t>(std::sqrt(static_cast<double>(10 * gib))) : 1;
  return inactive * ratio < active;
}

std::uint64_t GuestKernel::shrink_node(std::uint64_t target, bool direct, int priority) {
  // get_scan_count(): no swap, no anon scan; plenty of inactive file pages, file only;
  // otherwise anon and file in proportion to swappiness and to how few of the pages each
  // recently scanned were rotated back (recent_scanned / recent_rotated).
  const bool can_swap = has_swap() && lru_.tracks_anon();
  const std::uint64_t inactive_file = lru_.size(LruList::kInactiveFile);
  double anon_share = 0;
  if (can_swap && !(!inactive_is_low(true) && (inactive_file >> priority) > 0)) {
    for (int i = 0; i < 2; ++i) {
      const std::uint64_t size =
          i == 0 ? lru_.size(LruList::kInactiveAnon) + lru_.size(LruList::kActiveAnon)
                 : inactive_file + lru_.size(LruList::kActiveFile);
      if (recent_scanned_[i] > size / 4) {
        recent_scanned_[i] /= 2;
        recent_rotated_[i] /= 2;
      }
    }
    const double ap = (cfg_.swappiness + 1.0) * static_cast<double>(recent_scanned_[0] + 1) /
                      static_cast<double>(recent_rotated_[0] + 1);
    const double fp = (200.0 - cfg_.swappiness + 1.0) *
                      static_cast<double>(recent_scanned_[1] + 1) /
                      static_cast<double>(recent_rotated_[1] + 1);
    anon_share = ap / (ap + fp);
  }
  const auto scan_of = [&](LruList l) {
    const std::uint64_t size = lru_.size(l);
    const double share = is_file_lru(l) ? 1.0 - anon_share : anon_share;
    auto scan = static_cast<std::uint64_t>(static_cast<double>(size >> priority) * share);
    // At low priority a small non-empty list is still scanned a batch at a time.
    if (scan == 0 && share > 0 && size > 0 && priority < kDefPriority - 2) {
      scan = std::min(size, kSwapClusterMax);
    }
    return scan;
  };
  std::uint64_t nr[kLruLists]{};
  for (const LruList l : {LruList::kInactiveAnon, LruList::kActiveAnon, LruList::kInactiveFile,
                          LruList::kActiveFile}) {
    nr[static_cast<std::size_t>(l)] = scan_of(l);
  }
  std::uint64_t freed = 0;
  bool work = true;
  while (work && freed < target) {
    work = false;
    for (const LruList l : {LruList::kInactiveAnon, LruList::kActiveAnon, LruList::kInactiveFile,
                            LruList::kActiveFile}) {
      std::uint64_t& left = nr[static_cast<std::size_t>(l)];
      if (left == 0) continue;
      const std::uint64_t batch = std::min(left, kSwapClusterMax);
      left -= batch;
      work = true;
      if (is_active_lru(l)) {
        if (inactive_is_low(is_file_lru(l))) shrink_active(l, batch);
      } else {
        freed += shrink_inactive(l, batch, direct);
      }
    }
  }
  // Aging: the active anon list is deactivated even when anon is not scanned (kswapd's
  // age_active_anon), so that swap has candidates when it is needed.
  if (can_swap && !direct && inactive_is_low(false)) {
    shrink_active(LruList::kActiveAnon, kSwapClusterMax);
  }
  return freed;
}

void GuestKernel::shrink_active(LruList l, std::uint64_t scan) {
  // shrink_active_list(): referenced executable file pages get another trip on the active
  // list; every other page goes to the inactive list (its young bit cleared).
  const bool file = is_file_lru(l);
  const LruList inactive = file ? LruList::kInactiveFile : LruList::kInactiveAnon;
  std::uint64_t scanned = 0;
  for (; scanned < scan; ++scanned) {
    const std::optional<Gfn> g = lru_.take_tail(l);
    if (!g) break;
    PageFlags f = flags(*g);
    const bool young = f.test(PageFlags::kYoung);
    f.set(PageFlags::kYoung, false);
    set_flags(*g, f);
    if (young && file && f.test(PageFlags::kExec)) {
      lru_.add(*g, l);
      ++recent_rotated_[1];
      continue;
    }
    lru_.add(*g, inactive);
  }
  recent_scanned_[file ? 1 : 0] += scanned;
  stats_.pgscan.add(scanned);
  vcpu_.charge(costs_.cost(Op::kStructPageVisit) * scanned);
}

std::uint64_t GuestKernel::shrink_inactive(LruList l, std::uint64_t scan, bool direct) {
  std::uint64_t freed = 0;
  std::uint64_t scanned = 0;
  for (; scanned < scan; ++scanned) {
    const std::optional<Gfn> g = lru_.tail(l);
    if (!g) break;
    if (reclaim_page(*g, direct)) ++freed;
  }
  recent_scanned_[is_file_lru(l) ? 1 : 0] += scanned;
  stats_.pgscan.add(scanned);
  if (direct) stats_.pgscan_direct.add(scanned);
  stats_.pgsteal.add(freed);
  vcpu_.charge(costs_.cost(Op::kStructPageVisit) * scanned +
               costs_.cost(Op::kReclaimCleanPage) * freed);
  return freed;
}

bool GuestKernel::reclaim_page(Gfn g, bool /*direct*/) {
  // shrink_page_list() for one page, the tail of its inactive list. A page reclaim keeps
  // goes from the tail to the head without leaving the list; one it activates or frees is
  // taken off the list first.
  PageFlags f = flags(g);
  const LruList scanned_list = Lru::list_of(map_[g]);
  const bool anon = f.test(PageFlags::kSwapBacked);
  const LruList inactive = anon ? LruList::kInactiveAnon : LruList::kInactiveFile;
  const LruList active = anon ? LruList::kActiveAnon : LruList::kActiveFile;
  const auto keep = [&] { lru_.rotate_tail(scanned_list); };
  const auto take = [&] { lru_.take_tail(scanned_list); };
  const auto activate_taken = [&] {
    lru_.add(g, active);
    ++recent_rotated_[anon ? 0 : 1];
  };
  if (f.test(PageFlags::kLocked)) {
    keep();
    return false;
  }
  if (f.test(PageFlags::kWriteback)) {
    // Reclaim does not wait for writeback; it marks the page, which then goes to the tail
    // when its write completes.
    f.set(PageFlags::kReclaim);
    set_flags(g, f);
    keep();
    return false;
  }
  // page_check_references()
  const bool young = f.test(PageFlags::kYoung);
  const bool referenced = f.test(PageFlags::kReferenced);
  f.set(PageFlags::kYoung, false);
  if (young) {
    // referenced_ptes > 1: a page cache page that several processes map (the young bit is
    // one per page here, so any young page mapped twice counts).
    const bool mapped_twice = mapcount_.size() > 0 && mapcount_.get(g.value()) > 1;
    if (anon || referenced || mapped_twice || f.test(PageFlags::kExec)) {
      f.set(PageFlags::kReferenced, false);
      set_flags(g, f);
      take();
      activate_taken();
      return false;
    }
    f.set(PageFlags::kReferenced);
    set_flags(g, f);
    keep();
    return false;
  }
  set_flags(g, f);
  if (anon) {
    if (f.test(PageFlags::kSwapCache) && !f.test(PageFlags::kMapped)) {
      if (f.test(PageFlags::kDirty)) {
        keep();
        return false;
      }
      take();
      free_swapcache_page(g);  // its copy is in the slot
      return true;
    }
    const std::optional<MappingOwner> o = slots_.owner(g);
    take();
    if (!o || !has_swap()) {
      activate_taken();  // no swap space: anonymous memory cannot be reclaimed
      return false;
    }
    if (!swap_out(g, o->mapping, o->page)) {
      activate_taken();
      return false;
    }
    const PageFlags after = flags(g);
    if (after.test(PageFlags::kWriteback)) {
      lru_.add(g, inactive);  // back at the head, as it was taken off before swap_out
      return false;
    }
    free_swapcache_page(g);  // stored without a disk write (frontswap)
    return true;
  }
  const std::optional<MappingOwner> o = slots_.owner(g);
  if (!o) {
    keep();
    return false;
  }
  if (f.test(PageFlags::kDirty)) {
    // Reclaim leaves dirty file pages to the flusher (no writepage from reclaim): it marks
    // them, asks for the file's writeback and moves on.
    f.set(PageFlags::kReclaim);
    set_flags(g, f);
    keep();
    start_writeback(file_of(o->mapping), 1024, false);
    return false;
  }
  take();
  evict_file_page(g, o->mapping, o->page);
  return true;
}

}  // namespace memvirt
