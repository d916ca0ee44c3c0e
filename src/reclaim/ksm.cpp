#include "reclaim/ksm.hpp"

#include <bit>

namespace memvirt {
namespace {

// calc_checksum(): 32 bits of a hash of the page; here of its content fingerprint.
std::uint32_t checksum_of(Fingerprint fp) {
  return static_cast<std::uint32_t>(splitmix64(fp.value()));
}

// skip_age(): how many scans a page that keeps failing to merge is skipped.
std::uint8_t skip_age(std::uint8_t age) {
  if (age <= 3) return 1;
  if (age <= 5) return 2;
  if (age <= 8) return 4;
  return 8;
}

}  // namespace

KsmConfig Ksm::config_from(Params& p) {
  KsmConfig c;
  c.run = p.boolean("run", c.run, "ksmd runs from the start (sysfs run; a policy may change it)");
  c.pages_to_scan = static_cast<std::uint64_t>(p.integer(
      "pages_to_scan", 100, "pages per ksmd wake-up (Linux default 100)", 1, 100'000'000));
  c.sleep = Duration::millis(p.integer(
      "sleep_millisecs", 20, "ksmd sleep between batches (Linux default 20)", 0, 3'600'000));
  c.max_page_sharing = static_cast<std::uint32_t>(
      p.integer("max_page_sharing", 256,
                "mappings per KSM page before a duplicate (Linux default 256)", 2, 1 << 30));
  c.use_zero_pages =
      p.boolean("use_zero_pages", false, "merge zero pages with the zero page (Linux default 0)");
  c.smart_scan =
      p.boolean("smart_scan", true, "skip pages that keep failing to merge (Linux default 1)");
  c.checksum = p.option("checksum", Op::kXxh64Page, kKsmChecksumSpellings,
                        "page checksum: xxh64 (current kernels) or jhash2 (older kernels)");
  return c;
}

void Ksm::start(const MechanismEnv& env) {
  env_ = env;
  ksmd_ = &env.accounts->get("ksmd", 1);
  ksmd_loop_.emplace(*env.queue, EventQueue::kDaemon, [this](TimePoint) { return ksmd_step(); });
  if (cfg_.run) ksmd_loop_->start(cfg_.sleep);
}

Duration Ksm::ksmd_step() {
  // ksmd: scan a batch (taking as long as its CPU time), then sleep. The kernel merges each
  // page as it reaches it, so a batch is applied in slices of at most kSlice of CPU time, each
  // at the moment ksmd gets to it: with pages_to_scan in the millions a batch lasts seconds.
  // kSlice is the model's time resolution, not a kernel parameter.
  static constexpr CpuTime kSlice{10'000'000'000};  // 10 ms
  if (ksmd_sleeping_) {
    if (!cfg_.run) {
      ksmd_loop_->stop();
      return Duration{0};
    }
    ksmd_sleeping_ = false;
    batch_budget_ = cfg_.pages_to_scan;
    batch_spent_ = CpuTime{};
  }
  const CpuTime cost = scan_pages(batch_budget_, kSlice);
  batch_spent_ += cost;
  if (batch_budget_ > 0) return cost.duration();
  ksmd_sleeping_ = true;
  // A batch that found nothing to scan still yields for a scheduler tick, so virtual time
  // moves on even with sleep_millisecs = 0.
  const Duration busy = batch_spent_.ps > 0 ? cost.duration() : Duration::millis(1);
  if (!cfg_.run) {
    ksmd_loop_->stop();
    return Duration{0};
  }
  return busy + cfg_.sleep;
}

void Ksm::tune(bool run, std::uint64_t pages_to_scan, Duration sleep) {
  cfg_.pages_to_scan = std::max<std::uint64_t>(1, pages_to_scan);
  cfg_.sleep = sleep;
  const bool was = cfg_.run;
  cfg_.run = run;
  // A stopped ksmd waits in wait_event(ksmd_should_run()); writing run=1 wakes it at once.
  if (run && !was && ksmd_loop_ && !ksmd_loop_->running()) ksmd_loop_->start(Duration{0});
}

void Ksm::attach(const VmHandle& vm) {
  // QEMU marks guest RAM MADV_MERGEABLE: KSM registers the VM's memory.
  auto s = std::make_unique<VmState>();
  s->vm = vm;
  s->items.resize(vm.kernel->total_pages());
  vms_.push_back(std::move(s));
}

Ksm::VmState* Ksm::find(VmId vm) {
  for (auto& s : vms_) {
    if (s->vm.id == vm) return s.get();
  }
  return nullptr;
}

void Ksm::detach(VmId vm) {
  for (std::size_t i = 0; i < vms_.size(); ++i) {
    if (vms_[i]->vm.id != vm) continue;
    for (auto& item : vms_[i]->items) {
      if ((item.flags & kUnstable) != 0) --unshared_;
      if ((item.flags & kExists) != 0) --rmap_items_;
    }
    vms_.erase(vms_.begin() + static_cast<std::ptrdiff_t>(i));
    if (cursor_vm_ > i) {
      --cursor_vm_;
    } else if (cursor_vm_ == i) {
      cursor_gfn_ = 0;
    }
    break;
  }
}

bool Ksm::is_ksm_page(std::uint64_t shared_id) const {
  const auto it = ksm_frames_.find(shared_id);
  return it != ksm_frames_.end() && env_.host->shared_refs(shared_id) > 0 &&
         env_.host->shared_content(shared_id).value() == it->second;
}

CpuTime Ksm::search_cost(std::size_t tree_size) const {
  // A red-black tree walk compares the page with about log2(n) pages that differ.
  const auto depth = static_cast<std::uint64_t>(std::bit_width(tree_size));
  return env_.costs->cost(Op::kMemcmpPageDiffer) * depth;
}

void Ksm::remove_from_unstable(RmapItem& item) {
  if ((item.flags & kUnstable) != 0) {
    item.flags &= static_cast<std::uint8_t>(~kUnstable);
    --unshared_;
  }
}

bool Ksm::should_skip(RmapItem& item) {
  if (!cfg_.smart_scan) return false;
  const std::uint8_t age = item.age;
  if (age != UINT8_MAX) ++item.age;
  if (age < 3) return false;
  if (item.remaining_skips == 0) {
    item.remaining_skips = skip_age(age);
    return false;
  }
  --item.remaining_skips;
  remove_from_unstable(item);
  return true;
}

void Ksm::cmp_and_merge_page(VmState& s, Gfn gfn, Fingerprint fp, CpuTime& cost) {
  HostMemory& host = *env_.host;
  const CostProfile& c = *env_.costs;
  RmapItem& item = s.items[gfn.value()];
  remove_from_unstable(item);
  cost += c.cost(cfg_.checksum);
  const std::uint32_t checksum = checksum_of(fp);
  if (item.oldchecksum != checksum) {
    item.oldchecksum = checksum;  // volatile: changed since the last visit
    return;
  }
  if (host.state(s.vm.id, gfn) != PageState::kPrivate) return;
  if (cfg_.use_zero_pages && fp == kZeroContent) {
    cost += c.cost(Op::kKernelPteUpdate) * 2;  // write-protect, replace
    host.map_zero(s.vm.id, gfn);
    stats_.ksm_zero_pages.add();
    return;
  }
  // The stable tree.
  cost += search_cost(stable_.size());
  if (is_unique_content(fp)) {
    // No other page holds this content: both tree walks end without a match and the page
    // joins the unstable tree. Charge the walks; keep only the count.
    cost += search_cost(unstable_.size() + unique_in_unstable_);
    ++unique_in_unstable_;
    item.flags |= kUnstable;
    ++unshared_;
    return;
  }
  if (auto it = stable_.find(fp.value()); it != stable_.end()) {
    auto& dups = it->second.dups;
    std::erase_if(dups, [&](std::uint64_t id) { return !is_ksm_page(id); });
    for (const std::uint64_t id : dups) {
      if (host.shared_refs(id) >= cfg_.max_page_sharing) continue;
      cost += c.cost(Op::kMemcmpPage) + c.cost(Op::kKernelPteUpdate) * 2;
      if (host.merge_into(s.vm.id, gfn, id)) {
        stats_.merges.add();
        return;
      }
    }
    if (dups.empty()) stable_.erase(it);
  }
  // The unstable tree: search, and insert when nothing matches.
  cost += search_cost(unstable_.size() + unique_in_unstable_);
  ContentIndex::Page* found = unstable_.find_or_insert(fp.value(), {s.vm.id, gfn});
  if (found == nullptr) {
    item.flags |= kUnstable;
    ++unshared_;
    return;
  }
  const ContentIndex::Page other = *found;
  VmState* os = find(other.vm);
  const bool usable = os != nullptr && !(other.vm == s.vm.id && other.gfn == gfn) &&
                      host.state(other.vm, other.gfn) == PageState::kPrivate &&
                      host.peek(other.vm, other.gfn) == fp;
  if (!usable) {
    // The tree page is gone or changed: this page takes its place.
    if (os != nullptr) remove_from_unstable(os->items[other.gfn.value()]);
    *found = ContentIndex::Page{s.vm.id, gfn};
    item.flags |= kUnstable;
    ++unshared_;
    return;
  }
  // try_to_merge_two_pages(): both pages become one write-protected KSM page.
  cost += c.cost(Op::kMemcmpPage) + c.cost(Op::kKernelPteUpdate) * 3;
  const auto id = host.make_shared(other.vm, other.gfn);
  if (!id || !host.merge_into(s.vm.id, gfn, *id)) return;
  remove_from_unstable(os->items[other.gfn.value()]);
  unstable_.erase(fp.value());
  stable_[fp.value()].dups.push_back(*id);
  ksm_frames_[*id] = fp.value();
  stats_.merges.add(2);
}

void Ksm::end_full_scan() {
  stats_.full_scans.add();
  unstable_.clear();  // root_unstable_tree = RB_ROOT; items are unlinked lazily
  unique_in_unstable_ = 0;
  // Forget KSM frames that no longer exist (stale stable nodes are pruned as found). Only
  // when many may be stale, so the sweep costs little against the scan.
  if (ksm_frames_.size() > 2 * (stable_.size() + 1024)) {
    std::erase_if(ksm_frames_, [&](const auto& kv) {
      return env_.host->shared_refs(kv.first) == 0 ||
             env_.host->shared_content(kv.first).value() != kv.second;
    });
  }
}

CpuTime Ksm::scan_batch() {
  std::uint64_t budget = cfg_.pages_to_scan;
  return scan_pages(budget, CpuTime{~std::uint64_t{0}});
}

CpuTime Ksm::scan_pages(std::uint64_t& budget, CpuTime slice) {
  CpuTime cost{};
  HostMemory& host = *env_.host;
  std::uint64_t scanned_since_wrap = 1;  // the batch may start mid-scan
  if (vms_.empty()) budget = 0;
  while (budget > 0 && cost.ps < slice.ps) {
    if (cursor_vm_ >= vms_.size()) {
      cursor_vm_ = 0;
      cursor_gfn_ = 0;
      end_full_scan();
      // A whole pass that found nothing to scan ends the batch.
      if (scanned_since_wrap == 0) {
        budget = 0;
        break;
      }
      scanned_since_wrap = 0;
    }
    VmState& s = *vms_[cursor_vm_];
    const auto pages = static_cast<std::uint32_t>(s.items.size());
    while (budget > 0 && cursor_gfn_ < pages && cost.ps < slice.ps) {
      const Gfn g{cursor_gfn_++};
      RmapItem& item = s.items[g.value()];
      const PageState st = host.state(s.vm.id, g);
      if (st == PageState::kUnbacked && (g.value() & 511) == 0 && host.chunk_unbacked(s.vm.id, g)) {
        // A 2 MiB stretch never touched: nothing to visit in it.
        cursor_gfn_ = std::min(pages, g.value() + 512);
        continue;
      }
      if (st != PageState::kPrivate && st != PageState::kShared) {
        // Not an anonymous page now: its rmap_item, if any, is freed.
        if ((item.flags & kExists) != 0) {
          remove_from_unstable(item);
          item = RmapItem{};
          --rmap_items_;
        }
        continue;
      }
      if ((item.flags & kExists) == 0) {
        item = RmapItem{};
        item.flags = kExists;
        ++rmap_items_;
      }
      // A page already merged into a KSM page is never skipped and needs nothing.
      const bool ksm_page = st == PageState::kShared && is_ksm_page(*host.shared_frame(s.vm.id, g));
      if (!ksm_page && should_skip(item)) {
        stats_.pages_skipped.add();
        continue;
      }
      cost += env_.costs->cost(Op::kKsmScanPage);
      if (!ksm_page) cmp_and_merge_page(s, g, host.peek(s.vm.id, g), cost);
      stats_.pages_scanned.add();
      ++scanned_since_wrap;
      --budget;
    }
    if (cursor_gfn_ >= pages) {
      ++cursor_vm_;
      cursor_gfn_ = 0;
    }
  }
  ksmd_->charge(cost);
  return cost;
}

Ksm::Counters Ksm::counters() const {
  Counters k;
  for (const auto& [fp, node] : stable_) {
    for (const std::uint64_t id : node.dups) {
      if (!is_ksm_page(id)) continue;
      ++k.pages_shared;
      k.pages_sharing += env_.host->shared_refs(id) - 1;
    }
  }
  k.pages_unshared = unshared_;
  k.rmap_items = rmap_items_;
  const std::uint64_t accounted = k.pages_shared + k.pages_sharing + k.pages_unshared;
  k.pages_volatile = rmap_items_ > accounted ? rmap_items_ - accounted : 0;
  // general_profit: (pages_sharing + ksm_zero_pages) x PAGE_SIZE - rmap_items x
  // sizeof(struct ksm_rmap_item), which is 64 bytes on x86-64.
  k.general_profit =
      static_cast<std::int64_t>((k.pages_sharing + stats_.ksm_zero_pages.value()) * kPageSize) -
      static_cast<std::int64_t>(rmap_items_ * 64);
  return k;
}

void Ksm::visit_columns(StatsVisitor& v) const {
  v.counter("full_scans", stats_.full_scans);
  v.counter("pages_scanned", stats_.pages_scanned);
  v.counter("merges", stats_.merges);
}

void Ksm::visit_stats(StatsVisitor& v) const {
  const Counters k = counters();
  v.value("pages_shared", static_cast<double>(k.pages_shared));
  v.value("pages_sharing", static_cast<double>(k.pages_sharing));
  v.value("pages_unshared", static_cast<double>(k.pages_unshared));
  v.value("pages_volatile", static_cast<double>(k.pages_volatile));
  v.value("general_profit", static_cast<double>(k.general_profit));
  v.counter("full_scans", stats_.full_scans);
  v.counter("pages_scanned", stats_.pages_scanned);
  v.counter("pages_skipped", stats_.pages_skipped);
  v.counter("ksm_zero_pages", stats_.ksm_zero_pages);
  v.counter("merges", stats_.merges);
}

}  // namespace memvirt
