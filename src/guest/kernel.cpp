#include "guest/kernel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

#include "core/rng.hpp"
#include "core/spelling.hpp"
#include "guest/kernel_internal.hpp"

namespace memvirt {

GuestKernelConfig GuestKernelConfig::from_params(Params p, Bytes memory, unsigned vcpus) {
  GuestKernelConfig c;
  c.memory = memory;
  c.vcpus = vcpus;
  if (p.has("lowmem")) {
    c.lowmem = p.bytes("lowmem", Bytes{0}, "RAM below the PCI hole (DMA32 ends here)");
  }
  c.min_free_kbytes = static_cast<std::uint64_t>(
      p.integer("min_free_kbytes", 0,
                "vm.min_free_kbytes; 0 = Linux default sqrt(16 * lowmem_kbytes)", 0, 1 << 30));
  c.min_free_kbytes_max = static_cast<std::uint64_t>(
      p.integer("min_free_kbytes_max", 65536,
                "upper clamp of the default min_free_kbytes (65536 in Linux 4.4, 262144 from 5.8)",
                128, 1 << 30));
  c.khugepaged = p.boolean(
      "khugepaged", false,
      "transparent huge pages enabled (always or madvise): khugepaged raises min_free_kbytes "
      "to its recommended value (set_recommended_min_free_kbytes)");
  c.watermark_scale_factor = static_cast<std::uint32_t>(p.integer(
      "watermark_scale_factor", 10, "vm.watermark_scale_factor (Linux default 10)", 1, 3000));
  c.pcp_batch_cap =
      p.bytes("pcp_batch_cap", Bytes{512ULL * 1024},
              "cap on per-CPU list batch (zone_batchsize: 512 KiB in 4.4, 1 MiB later)");
  c.pcp_high_factor = static_cast<std::uint32_t>(p.integer(
      "pcp_high_factor", 6, "per-CPU list high = factor x batch (pageset_set_batch)", 1, 1000));
  c.shuffle =
      p.boolean("shuffle", false,
                "page_alloc.shuffle=1 (CONFIG_SHUFFLE_PAGE_ALLOCATOR): randomized free lists");
  c.swappiness = static_cast<std::uint32_t>(
      p.integer("swappiness", 60, "vm.swappiness (Linux default 60)", 0, 200));
  c.workingset = p.boolean("workingset", true,
                           "workingset refault detection (Linux 3.15+; false for older kernels)");
  c.anon_starts_active =
      p.option("anon_lru_start", false,
               std::array<Spelling<bool>, 2>{{{false, "inactive"}, {true, "active"}}},
               "list new anonymous pages start on: inactive (Linux 5.9+) or active (before 5.9)");
  c.dirty_background_ratio = static_cast<std::uint32_t>(
      p.integer("dirty_background_ratio", 10,
                "vm.dirty_background_ratio, percent (Linux default 10)", 0, 100));
  c.dirty_ratio = static_cast<std::uint32_t>(
      p.integer("dirty_ratio", 20, "vm.dirty_ratio, percent (Linux default 20)", 1, 100));
  if (c.dirty_background_ratio >= c.dirty_ratio) {
    p.fail("dirty_background_ratio", fmt::format("must be below dirty_ratio ({})", c.dirty_ratio));
  }
  c.dirty_expire = p.duration("dirty_expire", Duration::seconds(30),
                              "vm.dirty_expire_centisecs as a time (Linux default 30 s)");
  c.dirty_writeback = p.duration("dirty_writeback", Duration::seconds(5),
                                 "vm.dirty_writeback_centisecs as a time (Linux default 5 s)");
  if (c.dirty_writeback.ns() <= 0) p.fail("dirty_writeback", "must be positive");
  c.read_ahead_pages =
      p.bytes("read_ahead", Bytes{128 * 1024}, "read_ahead_kb as a size (Linux default 128 KiB)")
          .pages();
  c.page_cluster = static_cast<std::uint32_t>(p.integer(
      "page_cluster", 3, "vm.page-cluster: swap readahead of 2^n pages (default 3)", 0, 10));
  c.swap = p.bytes("swap", Bytes{0}, "size of the guest's swap partition; 0: no swap");
  return c;
}

namespace {

constexpr std::uint32_t kDmaPages = (16U << 20) >> kPageShift;

// zone_batchsize(): about a quarter of a MiB, rounded to 2^n - 1 to avoid cache aliasing.
std::uint32_t zone_batchsize(std::uint64_t managed, Bytes cap) {
  std::uint64_t batch = managed / 1024;
  batch = std::min<std::uint64_t>(batch, cap.pages());
  batch /= 4;
  batch = std::max<std::uint64_t>(batch, 1);
  const std::uint64_t b = std::bit_floor(batch + batch / 2) - 1;
  return static_cast<std::uint32_t>(std::max<std::uint64_t>(b, 1));
}

}  // namespace

GuestKernel::GuestKernel(const GuestKernelConfig& cfg, HostMemory& host, VmId vm,
                         const CostProfile& costs, CostAccount& vcpu, CostAccount& host_faults)
    : cfg_(cfg),
      host_(host),
      vm_(vm),
      costs_(costs),
      vcpu_(vcpu),
      host_faults_(host_faults),
      vcpus_(cfg.vcpus),
      lru_(map_.pages),
      slots_(0) {
  const std::uint64_t pages = cfg.memory.pages();
  if (pages < 1024 || pages > kLruMaxPages) {
    throw std::invalid_argument(
        fmt::format("guest memory {} pages is out of range [4 MiB, 1 TiB]", pages));
  }
  map_.pages = PageMetaTable(static_cast<std::uint32_t>(pages));
  lru_.resize(static_cast<std::uint32_t>(pages));
  slots_ = SlotSpace(static_cast<std::uint32_t>(pages));
  const auto total = static_cast<std::uint32_t>(pages);
  std::uint64_t lowmem = pages;
  if (cfg.lowmem) {
    lowmem = std::min<std::uint64_t>(cfg.lowmem->pages(), pages);
  } else if (cfg.memory.value() >= (7ULL << 29)) {
    lowmem = (3ULL << 30) >> kPageShift;  // QEMU pc: 3 GiB below the hole from 3.5 GiB of RAM
  }
  lowmem = std::min<std::uint64_t>(lowmem, (4ULL << 30) >> kPageShift);
  lowmem &= ~static_cast<std::uint64_t>((1U << (kMaxOrder - 1)) - 1);
  const std::uint32_t dma_end = std::min(total, kDmaPages);
  zones_.push_back(std::make_unique<Zone>("DMA", map_, Gfn{0}, dma_end, vcpus_));
  if (lowmem > dma_end) {
    zones_.push_back(std::make_unique<Zone>("DMA32", map_, Gfn{dma_end},
                                            static_cast<std::uint32_t>(lowmem - dma_end), vcpus_));
  }
  if (pages > lowmem && lowmem >= dma_end) {
    zones_.push_back(std::make_unique<Zone>("Normal", map_, Gfn{static_cast<std::uint32_t>(lowmem)},
                                            static_cast<std::uint32_t>(pages - lowmem), vcpus_));
  }
  setup_watermarks(cfg);
  for (auto& z : zones_) {
    const std::uint32_t batch = zone_batchsize(z->managed_pages(), cfg.pcp_batch_cap);
    z->set_pcp(batch, batch * cfg.pcp_high_factor);
    if (cfg.shuffle) {
      // A stream per VM and zone, so VMs shuffle differently and runs repeat.
      z->enable_shuffle(splitmix64(vm_.value() * 0x9E3779B97F4A7C15ULL + z->start().value()));
      z->shuffle_free_lists();
    }
  }
}

void GuestKernel::setup_watermarks(const GuestKernelConfig& cfg) {
  // __setup_per_zone_wmarks() and init_per_zone_wmark_min().
  std::uint64_t lowmem_pages = 0;
  for (auto& z : zones_) lowmem_pages += z->managed_pages();
  std::uint64_t min_free_kbytes = cfg.min_free_kbytes;
  if (min_free_kbytes == 0) {
    const auto lowmem_kbytes = lowmem_pages * (kPageSize / 1024);
    min_free_kbytes =
        static_cast<std::uint64_t>(std::sqrt(static_cast<double>(lowmem_kbytes * 16)));
    min_free_kbytes = std::clamp<std::uint64_t>(min_free_kbytes, 128, cfg.min_free_kbytes_max);
  }
  const auto set_watermarks = [&](std::uint64_t kbytes) {
    const std::uint64_t pages_min = kbytes >> (kPageShift - 10);
    for (auto& z : zones_) {
      Watermarks w;
      w.min = pages_min * z->managed_pages() / lowmem_pages;
      const std::uint64_t tmp = std::max<std::uint64_t>(
          w.min >> 2, z->managed_pages() * cfg.watermark_scale_factor / 10000);
      w.low = w.min + tmp;
      w.high = w.min + tmp * 2;
      z->set_watermarks(w);
    }
  };
  set_watermarks(min_free_kbytes);
  if (cfg.khugepaged) {
    // set_recommended_min_free_kbytes(), when khugepaged starts: two free pageblocks per
    // populated zone, plus MIGRATE_PCPTYPES^2 per zone for fallbacks, at most 5% of
    // nr_free_buffer_pages() (managed pages above the high watermarks).
    constexpr std::uint64_t kMigratePcpTypes = 3;
    constexpr std::uint64_t kPageblockPages = 1ULL << kPageblockOrder;
    std::uint64_t zones = 0, free_buffer = 0;
    for (const auto& z : zones_) {
      if (z->managed_pages() == 0) continue;
      ++zones;
      free_buffer +=
          z->managed_pages() - std::min<std::uint64_t>(z->managed_pages(), z->watermarks().high);
    }
    std::uint64_t recommended =
        kPageblockPages * zones * 2 + kPageblockPages * zones * kMigratePcpTypes * kMigratePcpTypes;
    recommended = std::min(recommended, free_buffer / 20) << (kPageShift - 10);
    if (recommended > min_free_kbytes) set_watermarks(recommended);
  }
  // setup_per_zone_lowmem_reserve() with sysctl_lowmem_reserve_ratio {256, 256, 32}.
  static constexpr std::uint64_t kRatio[] = {256, 256, 32};
  for (std::size_t i = 0; i < zones_.size(); ++i) {
    auto& reserve = zones_[i]->lowmem_reserve();
    reserve.assign(zones_.size(), 0);
    std::uint64_t above = 0;
    for (std::size_t j = i + 1; j < zones_.size(); ++j) {
      above += zones_[j]->managed_pages();
      reserve[j] = above / kRatio[i];
    }
  }
}

Zone& GuestKernel::zone_of(Gfn g) {
  for (auto& z : zones_) {
    if (z->contains(g)) return *z;
  }
  throw std::out_of_range(fmt::format("gfn {} is outside guest memory", g.value()));
}

GuestKernel::~GuestKernel() = default;

void GuestKernel::attach_disk(EventQueue& queue, BlockDevice& disk, std::uint64_t fs_sectors) {
  queue_ = &queue;
  disk_ = &disk;
  fs_sectors_ = fs_sectors;
  if (cfg_.swap.pages() > 0) {
    swap_ = std::make_unique<Swap>();
    swap_->slots = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(cfg_.swap.pages(), SlotEntry::kPayloadMask));
    swap_->first_sector = fs_sectors;
    swap_->in_use.assign(swap_->slots, false);
    swap_->content.assign(swap_->slots, kZeroContent);
    swap_->user.assign(swap_->slots, MappingOwner{});
    swap_->cache.resize(swap_->slots);
    swap_->slot_of_frame.resize(map_.pages.size());
    lru_.set_track_anon(true, map_.pages.size());
  }
  kswapd_pid_ = spawn("kswapd0", false);
}

bool GuestKernel::has_swap() const {
  return swap_ && swap_->used < swap_->slots;
}

std::uint64_t GuestKernel::reclaimable_pages() const {
  std::uint64_t n = lru_.size(LruList::kInactiveFile) + lru_.size(LruList::kActiveFile);
  if (has_swap()) n += lru_.size(LruList::kInactiveAnon) + lru_.size(LruList::kActiveAnon);
  return n;
}

std::optional<Gfn> GuestKernel::alloc_from_zonelist(unsigned cpu, unsigned order, bool low) {
  // Movable user allocations may use every zone, highest first (zonelist fallback order);
  // a lower zone keeps lowmem_reserve for its own class. The first pass checks the low
  // watermark (get_page_from_freelist with ALLOC_WMARK_LOW); the slow path checks min.
  const auto classzone = static_cast<unsigned>(zones_.size() - 1);
  for (auto it = zones_.rbegin(); it != zones_.rend(); ++it) {
    Zone& z = **it;
    const Watermarks& w = z.watermarks();
    if (!z.watermark_ok(order, low ? w.low : w.min, classzone)) continue;
    const Gfn g = z.rmqueue(cpu, order);
    if (g != Zone::kNoPage) return g;
  }
  return std::nullopt;
}

std::optional<Gfn> GuestKernel::alloc_pages(unsigned cpu, unsigned order, std::uint64_t* blocked) {
  std::optional<Gfn> g = alloc_from_zonelist(cpu, order, true);
  if (!g) {
    // __alloc_pages_slowpath: wake kswapd, then try again at the min watermark.
    wake_kswapd();
    g = alloc_from_zonelist(cpu, order, false);
  }
  // should_reclaim_retry(): direct reclaim is retried up to MAX_RECLAIM_RETRIES times
  // without progress before the OOM killer, since a pass that only aged the lists (moved
  // referenced pages to the active list, deactivated others) prepares the next one.
  constexpr int kMaxReclaimRetries = 16;
  int no_progress = 0;
  while (!g) {
    // Direct reclaim (__alloc_pages_direct_reclaim), then the OOM notifiers (for example
    // the balloon's deflate-on-OOM), then the OOM killer. When reclaim freed nothing
    // because what it could reclaim is under writeback, the caller waits for it rather
    // than kill (throttle_direct_reclaim / congestion_wait).
    const std::uint64_t scanned = stats_.pgscan.value();
    if (reclaim(std::uint64_t{1} << std::max(order, 5U), true) > 0) {
      no_progress = 0;
      for (auto& z : zones_) z->drain_pcp();
      g = alloc_from_zonelist(cpu, order, false);
      continue;
    }
    // should_reclaim_retry(): no progress with much of what reclaim could take still dirty
    // or under writeback waits for the I/O (congestion_wait) instead of scanning again.
    const bool writeback_bound = 2 * (nr_dirty_ + nr_writeback_) > reclaimable_pages();
    if (!writeback_bound && stats_.pgscan.value() > scanned && ++no_progress < kMaxReclaimRetries) {
      continue;
    }
    if (blocked != nullptr && last_io_ != 0 && io_.contains(last_io_)) {
      *blocked = last_io_;
      return std::nullopt;
    }
    std::uint64_t freed = 0;
    for (PageHooks* h : std::vector<PageHooks*>(map_.hooks)) freed += h->on_oom();
    if (freed > 0) {
      for (auto& z : zones_) z->drain_pcp();
      g = alloc_from_zonelist(cpu, order, false);
      continue;
    }
    if (!oom_kill()) {
      stats_.alloc_failures.add();
      return std::nullopt;
    }
    g = alloc_from_zonelist(cpu, order, false);
  }
  stats_.pages_allocated.add(1ULL << order);
  for (PageHooks* h : map_.hooks) h->on_alloc(*g, PageOrder{order});
  return g;
}

std::optional<Gfn> GuestKernel::try_alloc_pages(unsigned cpu, unsigned order) {
  std::optional<Gfn> g = alloc_from_zonelist(cpu, order, true);
  if (!g) {
    wake_kswapd();
    g = alloc_from_zonelist(cpu, order, false);
  }
  if (!g) return std::nullopt;
  stats_.pages_allocated.add(1ULL << order);
  for (PageHooks* h : map_.hooks) h->on_alloc(*g, PageOrder{order});
  return g;
}

void GuestKernel::free_pages(unsigned cpu, Gfn gfn, unsigned order) {
  for (PageHooks* h : map_.hooks) h->on_free(gfn, PageOrder{order});
  stats_.pages_freed.add(1ULL << order);
  zone_of(gfn).free_pages(cpu, gfn, order);
}

void GuestKernel::install(Gfn g, MappingId m, std::uint64_t page, PageFlags f, LruList list) {
  f.set_list(0);
  set_flags(g, f);
  slots_.set(m, page, SlotEntry::frame(g));
  lru_.add(g, list);
  if (f.test(PageFlags::kSwapBacked)) {
    ++nr_anon_;
  } else {
    ++nr_file_;
  }
  if (f.test(PageFlags::kMapped)) ++nr_mapped_;
}

void GuestKernel::uninstall(Gfn g, unsigned cpu) {
  const PageFlags f = flags(g);
  if (f.test(PageFlags::kSwapBacked)) {
    --nr_anon_;
  } else {
    --nr_file_;
  }
  if (f.test(PageFlags::kMapped)) --nr_mapped_;
  lru_.remove(g);
  set_flags(g, PageFlags{});
  free_pages(cpu, g, 0);
}

std::uint32_t GuestKernel::spawn(const std::string& name, bool killable) {
  Process p;
  p.pid = static_cast<std::uint32_t>(processes_.size());
  p.name = name;
  p.killable = killable;
  processes_.push_back(std::move(p));
  return processes_.back().pid;
}

Process& GuestKernel::proc(std::uint32_t pid) {
  if (pid >= processes_.size() || !processes_[pid].alive) {
    throw std::logic_error(fmt::format("no live process {}", pid));
  }
  return processes_[pid];
}

const Process* GuestKernel::process(std::uint32_t pid) const {
  return pid < processes_.size() ? &processes_[pid] : nullptr;
}

Region& GuestKernel::region(Process& p, std::uint64_t id) {
  for (auto& r : p.regions) {
    if (r.id == id) return r;
  }
  throw std::logic_error(fmt::format("process {} has no region {}", p.pid, id));
}

std::uint64_t GuestKernel::mmap(std::uint32_t pid, Bytes length, bool thp) {
  Process& p = proc(pid);
  Region r;
  r.id = next_region_++;
  r.mapping = slots_.create(MappingKind::kAnon, pid);
  r.length_pages = (length.value() + kPageSize - 1) >> kPageShift;
  r.thp = thp;
  committed_pages_ += r.length_pages;
  p.regions.push_back(std::move(r));
  return p.regions.back().id;
}

TouchResult GuestKernel::touch(std::uint32_t pid, std::uint64_t region_id, std::uint64_t pages,
                               const ContentFn& content, unsigned cpu, bool fill) {
  TouchResult result;
  Process& p = proc(pid);
  const CpuTime fault = costs_.cost(Op::kFirstTouchFault);
  const CpuTime clear = costs_.cost(Op::kZeroFillPage);
  const CpuTime program_write = fill ? clear : CpuTime{};
  constexpr std::uint64_t kHugePages = 1ULL << kPageblockOrder;
  for (std::uint64_t i = 0; i < pages; ++i) {
    {
      Region& r = region(p, region_id);
      if (r.touched >= r.length_pages) break;
      if (r.thp && r.touched % kHugePages == 0 && r.touched + kHugePages <= r.length_pages &&
          i + kHugePages <= pages) {
        // do_huge_pmd_anonymous_page(): an order-9 block without the OOM killer's help,
        // cleared whole (clear_huge_page), else the 4 KiB path below. A huge page is one
        // unevictable unit here: it is not split for swap.
        if (const std::optional<Gfn> huge = try_alloc_pages(cpu, kPageblockOrder)) {
          for (std::uint64_t k = 0; k < kHugePages; ++k) {
            const Gfn g{huge->value() + static_cast<std::uint32_t>(k)};
            if (host_.write(vm_, g, kZeroContent) == WriteEffect::kFaultIn) result.host += fault;
            host_.write(vm_, g, content(r.touched));
            install(g, r.mapping, r.touched, new_anon_flags(), LruList::kUnevictable);
            ++r.touched;
          }
          r.huge.resize(r.touched / kHugePages, false);
          r.huge.back() = true;
          p.rss_pages += kHugePages;
          result.pages += kHugePages;
          result.guest += fault + clear * (kHugePages - 1) + program_write * kHugePages;
          stats_.anon_faults.add();
          i += kHugePages - 1;
          continue;
        }
      }
    }
    std::uint64_t wait = 0;
    const std::optional<Gfn> g = alloc_pages(cpu, 0, &wait);
    if (!p.alive) {
      // The OOM killer chose this process while it faulted.
      if (g) free_pages(cpu, *g, 0);
      result.status = TouchStatus::kKilled;
      break;
    }
    if (!g) {
      result.status = wait != 0 ? TouchStatus::kBlocked : TouchStatus::kOutOfMemory;
      result.wait = wait;
      stall_on(wait);  // direct reclaim waits for writeback
      break;
    }
    Region& r = region(p, region_id);
    // The guest's fault handler clears the page, then the program writes its data.
    if (host_.write(vm_, *g, kZeroContent) == WriteEffect::kFaultIn) result.host += fault;
    host_.write(vm_, *g, content(r.touched));
    result.guest += fault + program_write;
    if (r.thp) r.huge.resize((r.touched + kHugePages) / kHugePages, false);
    install(*g, r.mapping, r.touched, new_anon_flags(), new_anon_list());
    ++r.touched;
    ++p.rss_pages;
    ++result.pages;
    stats_.anon_faults.add();
  }
  vcpu_.charge(result.guest);
  host_faults_.charge(result.host);
  return result;
}

Gfn GuestKernel::region_gfn(const Region& r, std::uint64_t page) const {
  const SlotEntry e = slots_.entry(r.mapping, page);
  if (page >= r.touched || e.kind() != SlotKind::kFrame) {
    throw std::out_of_range("region page not touched or not resident");
  }
  return e.gfn();
}

TouchResult GuestKernel::access(std::uint32_t pid, std::uint64_t region_id, std::uint64_t page,
                                bool write, Fingerprint fp, Fingerprint* out) {
  TouchResult result;
  Process& p = proc(pid);
  const Region& r = region(p, region_id);
  if (page >= r.touched) throw std::out_of_range("region page not touched");
  SlotEntry e = slots_.entry(r.mapping, page);
  // A file region's page that is not a private copy is the file's.
  if (r.file && e.kind() == SlotKind::kNone) {
    return access_file_page(pid, region_id, page, write, fp, out);
  }
  if (e.kind() == SlotKind::kSwap) {
    const std::uint64_t wait = swap_in(r.mapping, page, e.payload(), 0);
    if (wait != 0) {
      result.status = TouchStatus::kBlocked;
      result.wait = wait;
      stats_.major_faults.add();
      stall_on(wait);  // a swap-in: the page was in use when reclaim took it
      return result;
    }
    stats_.minor_faults.add();
    result.guest += costs_.cost(Op::kFirstTouchFault);
    e = slots_.entry(r.mapping, page);
  }
  if (e.kind() != SlotKind::kFrame) throw std::logic_error("anonymous page lost its frame");
  const Gfn g = e.gfn();
  PageFlags f = flags(g);
  f.set(PageFlags::kYoung);
  if (write) {
    f.set(PageFlags::kDirty);
    set_flags(g, f);
    // A page written again no longer matches its swap copy (try_to_free_swap on write).
    if (f.test(PageFlags::kSwapCache)) delete_from_swap_cache(g);
    if (host_.write(vm_, g, fp) != WriteEffect::kInPlace) {
      result.host += costs_.cost(Op::kFirstTouchFault);
    }
  } else {
    set_flags(g, f);
    if (out != nullptr) *out = host_.read(vm_, g);
  }
  result.pages = 1;
  vcpu_.charge(result.guest);
  host_faults_.charge(result.host);
  return result;
}

void GuestKernel::write(std::uint32_t pid, std::uint64_t region_id, std::uint64_t page,
                        Fingerprint fp) {
  Process& p = proc(pid);
  const Gfn g = region_gfn(region(p, region_id), page);
  PageFlags f = flags(g);
  f.set(PageFlags::kYoung);
  f.set(PageFlags::kDirty);
  set_flags(g, f);
  if (f.test(PageFlags::kSwapCache)) delete_from_swap_cache(g);
  if (host_.write(vm_, g, fp) != WriteEffect::kInPlace) {
    host_faults_.charge(costs_.cost(Op::kFirstTouchFault));
  }
  vcpu_.charge(costs_.cost(Op::kZeroFillPage));
}

Fingerprint GuestKernel::read(std::uint32_t pid, std::uint64_t region_id, std::uint64_t page) {
  Process& p = proc(pid);
  const Gfn g = region_gfn(region(p, region_id), page);
  PageFlags f = flags(g);
  f.set(PageFlags::kYoung);
  set_flags(g, f);
  return host_.read(vm_, g);
}

void GuestKernel::release_anon_page(MappingId m, std::uint64_t page, SlotEntry e, unsigned cpu,
                                    bool huge_head, bool clear_slot) {
  if (e.kind() == SlotKind::kSwap) {
    if (clear_slot) slots_.set(m, page, SlotEntry{});
    // A swap cache page nobody maps any more goes with its slot.
    if (const std::uint32_t cached = swap_->cache.get(e.payload()); cached != 0) {
      const Gfn g = SlotEntry{cached}.gfn();
      delete_from_swap_cache(g);  // ends its writeback, if its swap write is in flight
      uninstall(g, cpu);
    }
    free_swap_slot(e.payload());
    return;
  }
  if (e.kind() != SlotKind::kFrame) return;
  const Gfn g = e.gfn();
  if (flags(g).test(PageFlags::kSwapCache)) delete_from_swap_cache(g);
  // A whole mapping's entries go at once (SlotSpace::release), with their reverse map.
  if (clear_slot) slots_.set(m, page, SlotEntry{});
  --nr_anon_;
  --nr_mapped_;
  lru_.remove(g);
  set_flags(g, PageFlags{});
  // A huge page goes back whole, as one order-9 block, from its first page.
  free_pages(cpu, g, huge_head ? kPageblockOrder : 0);
}

CpuTime GuestKernel::release_region(Process& p, Region& r, unsigned cpu) {
  if (r.file) release_file_region(p, r);
  const CpuTime per_page = costs_.cost(Op::kMadviseDontneedBatched);
  std::uint64_t freed = 0;
  constexpr std::uint64_t kHugePages = 1ULL << kPageblockOrder;
  for (std::uint64_t page = 0; page < r.touched; ++page) {
    const std::uint64_t chunk = page / kHugePages;
    const bool huge = chunk < r.huge.size() && r.huge[chunk];
    const SlotEntry e = slots_.entry(r.mapping, page);
    if (e.kind() == SlotKind::kFrame) ++freed;
    if (huge) {
      // The tail pages of a huge page are freed with its head.
      if (page % kHugePages == 0) {
        for (std::uint64_t k = 1; k < kHugePages; ++k) {
          const Gfn t = slots_.entry(r.mapping, page + k).gfn();
          lru_.remove(t);
          set_flags(t, PageFlags{});
          --nr_anon_;
          --nr_mapped_;
        }
        freed += kHugePages - 1;
        release_anon_page(r.mapping, page, e, cpu, true, false);
      }
      page += kHugePages - 1 - (page % kHugePages);
      continue;
    }
    release_anon_page(r.mapping, page, e, cpu, false, false);
  }
  slots_.release(r.mapping);
  r.huge.clear();
  p.rss_pages -= freed;
  committed_pages_ -= r.length_pages;
  r.length_pages = 0;
  r.touched = 0;
  const CpuTime spent = per_page * freed;
  vcpu_.charge(spent);
  return spent;
}

CpuTime GuestKernel::munmap(std::uint32_t pid, std::uint64_t region_id, unsigned cpu) {
  Process& p = proc(pid);
  Region& r = region(p, region_id);
  const CpuTime spent = release_region(p, r, cpu);
  std::erase_if(p.regions, [&](const Region& x) { return x.id == region_id; });
  return spent;
}

CpuTime GuestKernel::munmap_tail(std::uint32_t pid, std::uint64_t region_id, std::uint64_t pages,
                                 unsigned cpu) {
  Process& p = proc(pid);
  Region& r = region(p, region_id);
  if (r.file) throw std::logic_error("munmap_tail of a file region");
  pages = std::min(pages, r.touched);
  // Huge pages the tail reaches are split (split_huge_pmd): their pages go back one by one.
  const std::uint64_t first_chunk = (r.touched - pages) / (1ULL << kPageblockOrder);
  for (std::uint64_t c = first_chunk; c < r.huge.size(); ++c) {
    if (!r.huge[c]) continue;
    r.huge[c] = false;
    for (std::uint64_t k = 0; k < (1ULL << kPageblockOrder); ++k) {
      const SlotEntry e = slots_.entry(r.mapping, (c << kPageblockOrder) + k);
      if (e.kind() != SlotKind::kFrame) continue;
      // split_page(): each page becomes an order-0 page of its own.
      map_.mut(e.gfn()).set_order(PageOrder{0});
      lru_.add(e.gfn(), new_anon_list());
    }
  }
  std::uint64_t resident = 0;
  for (std::uint64_t k = 0; k < pages; ++k) {
    const std::uint64_t page = r.touched - 1 - k;
    const SlotEntry e = slots_.entry(r.mapping, page);
    if (e.kind() == SlotKind::kFrame) ++resident;
    release_anon_page(r.mapping, page, e, cpu, false, true);
  }
  r.touched -= pages;
  r.length_pages -= pages;
  p.rss_pages -= resident;
  committed_pages_ -= pages;
  const CpuTime spent = costs_.cost(Op::kMadviseDontneedBatched) * pages;
  vcpu_.charge(spent);
  return spent;
}

CpuTime GuestKernel::exit(std::uint32_t pid) {
  Process& p = proc(pid);
  CpuTime spent{};
  for (auto& r : p.regions) spent += release_region(p, r, 0);
  p.regions.clear();
  p.alive = false;
  stop_running(p);
  return spent;
}

bool GuestKernel::oom_kill() {
  Process* victim = nullptr;
  for (auto& p : processes_) {
    if (!p.alive || !p.killable || p.rss_pages == 0) continue;
    if (victim == nullptr || p.rss_pages >= victim->rss_pages) victim = &p;
  }
  if (victim == nullptr) return false;
  stats_.oom_kills.add();
  exit(victim->pid);
  // The victim's order-0 pages went to the per-CPU lists, which the watermark check does not
  // count; drain them into the buddy lists so that the caller's retry sees them.
  for (auto& z : zones_) z->drain_pcp();
  return true;
}

std::uint64_t GuestKernel::free_pages() const {
  std::uint64_t n = 0;
  for (const auto& z : zones_) n += z->free_pages();
  return n;
}

std::uint64_t GuestKernel::pcp_pages() const {
  std::uint64_t n = 0;
  for (const auto& z : zones_) n += z->pcp_pages();
  return n;
}

Meminfo GuestKernel::meminfo() const {
  Meminfo m;
  m.total = total_pages();
  m.free = free_pages() + pcp_pages();
  m.active_anon = lru_.size(LruList::kActiveAnon);
  m.inactive_anon = lru_.size(LruList::kInactiveAnon);
  m.active_file = lru_.size(LruList::kActiveFile);
  m.inactive_file = lru_.size(LruList::kInactiveFile);
  m.cached = nr_file_;
  m.swap_cached = nr_swapcache_;
  m.dirty = nr_dirty_;
  m.writeback = nr_writeback_;
  m.anon = nr_anon_ - nr_swapcache_;
  m.mapped = nr_mapped_;
  m.swap_total = swap_ ? swap_->slots : 0;
  m.swap_free = swap_ ? swap_->slots - swap_->used : 0;
  m.committed_as = committed_pages_;
  // si_mem_available(): free pages above totalreserve_pages (each zone's high watermark and
  // its largest lowmem reserve), plus the page cache less what must stay (half of it, or
  // the low watermarks if smaller). The model has no reclaimable slab.
  std::uint64_t low = 0, reserve = 0;
  for (const auto& z : zones_) {
    low += z->watermarks().low;
    std::uint64_t most = 0;
    for (std::size_t c = 0; c < zones_.size(); ++c) {
      most = std::max(most, z->lowmem_reserve(static_cast<unsigned>(c)));
    }
    reserve += z->watermarks().high + most;
  }
  const std::uint64_t file_lru = m.active_file + m.inactive_file;
  const std::uint64_t avail_free = m.free > reserve ? m.free - reserve : 0;
  m.available = avail_free + file_lru - std::min(file_lru / 2, low);
  return m;
}

std::uint64_t GuestKernel::memory_bytes() const {
  std::uint64_t bytes = map_.pages.memory_bytes() + map_.lists.memory_bytes() +
                        lru_.memory_bytes() + slots_.memory_bytes();
  for (const auto& p : processes_) {
    bytes += sizeof(Process) + p.regions.capacity() * sizeof(Region);
    for (const auto& r : p.regions) bytes += r.file_mapped.capacity() / 8;
  }
  bytes += mapcount_.memory_bytes() + free_extents_.capacity() * 16;
  bytes += files_.capacity() * sizeof(GuestFile);
  for (const auto& f : files_) bytes += f.on_disk.size() * 32;
  if (swap_) {
    bytes += swap_->in_use.capacity() / 8 + swap_->content.capacity() * sizeof(Fingerprint) +
             swap_->cache.memory_bytes() + swap_->slot_of_frame.memory_bytes();
  }
  return bytes;
}

void GuestKernel::check(bool full) const {
  for (const auto& z : zones_) z->check(full);
  const std::uint64_t allocated = stats_.pages_allocated.value() - stats_.pages_freed.value();
  if (!full) return;
  lru_.check();
  std::uint64_t owned_pages = 0;
  std::unordered_map<std::uint32_t, std::uint32_t> mapped_file;  // gfn -> regions mapping it
  for (const auto& p : processes_) {
    std::uint64_t rss = 0;
    for (const auto& r : p.regions) {
      for (std::uint64_t page = 0; page < r.touched; ++page) {
        const SlotEntry e = slots_.entry(r.mapping, page);
        if (e.kind() != SlotKind::kFrame) continue;
        const std::optional<MappingOwner> o = slots_.owner(e.gfn());
        if (!o || o->mapping != r.mapping || o->page != page) {
          throw std::logic_error(fmt::format("gfn {} has no reverse map to pid {} page {}",
                                             e.gfn().value(), p.pid, page));
        }
        if (map_[e.gfn()].state() != GuestPageState::kInUse) {
          throw std::logic_error(fmt::format("owned gfn {} is not in use", e.gfn().value()));
        }
        ++rss;
      }
    }
    owned_pages += rss;
    for (const auto& r : p.regions) {
      if (!r.file) continue;
      const GuestFile& f = files_[r.file->value()];
      for (std::uint64_t page = 0; page < r.file_mapped.size(); ++page) {
        if (!r.file_mapped[page]) continue;
        const SlotEntry e = slots_.entry(f.mapping, page);
        if (e.kind() != SlotKind::kFrame || !flags(e.gfn()).test(PageFlags::kMapped)) {
          throw std::logic_error(
              fmt::format("pid {} maps file {} page {}, not a mapped cached page", p.pid,
                          r.file->value(), page));
        }
        ++mapped_file[e.gfn().value()];
        ++rss;
      }
    }
    if (rss != p.rss_pages) {
      throw std::logic_error(fmt::format("pid {} rss {} != {} resident", p.pid, p.rss_pages, rss));
    }
  }
  for (std::uint32_t g = 0; g < mapcount_.size(); ++g) {
    const auto it = mapped_file.find(g);
    if (mapcount_.get(g) != (it == mapped_file.end() ? 0 : it->second)) {
      throw std::logic_error(fmt::format("gfn {} has mapcount {}, mapped by {} regions", g,
                                         mapcount_.get(g),
                                         it == mapped_file.end() ? 0 : it->second));
    }
  }
  std::uint64_t cached = 0;
  for (const auto& f : files_) {
    if (!f.live) continue;
    std::uint64_t resident = 0;
    const std::uint64_t extent = slots_.extent_pages(f.mapping);
    for (std::uint64_t page = 0; page < extent; ++page) {
      const SlotEntry e = slots_.entry(f.mapping, page);
      if (e.kind() == SlotKind::kFrame) {
        ++resident;
        if (page >= f.pages) throw std::logic_error("file page cached beyond its size");
      }
    }
    if (resident != f.cached) throw std::logic_error("file cached count disagrees with its pages");
    cached += resident;
  }
  std::uint64_t isolated = 0, on_lru = 0, writeback = 0, dirty_file = 0;
  for (std::uint32_t g = 0; g < map_.pages.size(); ++g) {
    const PageMeta m = map_[Gfn{g}];
    if (m.state() == GuestPageState::kInUse) {
      const PageFlags f = m.flags();
      if (f.test(PageFlags::kWriteback)) ++writeback;
      if (f.test(PageFlags::kDirty) && !f.test(PageFlags::kSwapBacked)) ++dirty_file;
    }
    if (m.state() == GuestPageState::kIsolated || m.state() == GuestPageState::kOffline) {
      isolated += m.order().pages();
    }
    if (m.state() == GuestPageState::kInUse && Lru::list_of(m) != LruList::kNone) ++on_lru;
  }
  std::uint64_t lru_total = 0;
  for (std::size_t l = 1; l < kLruLists; ++l) lru_total += lru_.size(static_cast<LruList>(l));
  if (on_lru != lru_total) {
    throw std::logic_error(
        fmt::format("{} pages flagged on an LRU list, lists count {}", on_lru, lru_total));
  }
  if (writeback != nr_writeback_) {
    throw std::logic_error(
        fmt::format("{} pages under writeback, Writeback counts {}", writeback, nr_writeback_));
  }
  if (dirty_file != nr_dirty_) {
    throw std::logic_error(
        fmt::format("{} dirty page cache pages, Dirty counts {}", dirty_file, nr_dirty_));
  }
  if (nr_file_ != cached) {
    throw std::logic_error(fmt::format("page cache count {} != {} cached pages", nr_file_, cached));
  }
  if (on_lru != nr_file_ + nr_anon_) {
    throw std::logic_error(
        fmt::format("LRU pages {} != file {} + anon {}", on_lru, nr_file_, nr_anon_));
  }
  if (free_pages() + pcp_pages() + allocated + isolated != map_.pages.size()) {
    throw std::logic_error(fmt::format(
        "guest pages do not add up: free {} + pcp {} + allocated {} + isolated {} != {}",
        free_pages(), pcp_pages(), allocated, isolated, map_.pages.size()));
  }
  if (owned_pages + cached > allocated) {
    throw std::logic_error("processes and the page cache own more pages than allocated");
  }
}

}  // namespace memvirt
