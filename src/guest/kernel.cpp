#include "guest/kernel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

#include "core/rng.hpp"

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

void append_run(std::vector<GfnRun>& runs, std::uint32_t g) {
  if (!runs.empty()) {
    GfnRun& last = runs.back();
    const auto n = static_cast<std::uint32_t>(std::abs(last.count));
    if (last.count > 0 && g == last.first + n) {
      ++last.count;
      return;
    }
    if ((last.count < 0 || n == 1) && g + n == last.first) {
      last.count = -static_cast<std::int32_t>(n + 1);
      return;
    }
  }
  runs.push_back(GfnRun{g, 1});
}

}  // namespace

GuestKernel::GuestKernel(const GuestKernelConfig& cfg, HostMemory& host, VmId vm,
                         const CostProfile& costs, CostAccount& vcpu, CostAccount& host_faults)
    : host_(host),
      vm_(vm),
      costs_(costs),
      vcpu_(vcpu),
      host_faults_(host_faults),
      vcpus_(cfg.vcpus) {
  const std::uint64_t pages = cfg.memory.pages();
  if (pages < 1024 || pages > (1ULL << 31)) {
    throw std::invalid_argument(
        fmt::format("guest memory {} pages is out of range [4 MiB, 8 TiB]", pages));
  }
  map_.pages = PageMetaTable(static_cast<std::uint32_t>(pages));
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
  const std::uint64_t pages_min = min_free_kbytes >> (kPageShift - 10);
  for (auto& z : zones_) {
    Watermarks w;
    w.min = pages_min * z->managed_pages() / lowmem_pages;
    const std::uint64_t tmp = std::max<std::uint64_t>(
        w.min >> 2, z->managed_pages() * cfg.watermark_scale_factor / 10000);
    w.low = w.min + tmp;
    w.high = w.min + tmp * 2;
    z->set_watermarks(w);
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

std::optional<Gfn> GuestKernel::alloc_from_zonelist(unsigned cpu, unsigned order) {
  // Movable user allocations may use every zone, highest first (zonelist fallback order);
  // a lower zone keeps lowmem_reserve for its own class.
  const auto classzone = static_cast<unsigned>(zones_.size() - 1);
  for (auto it = zones_.rbegin(); it != zones_.rend(); ++it) {
    Zone& z = **it;
    // Every allocation first checks the zone's min watermark against its buddy free pages
    // (pages on per-CPU lists do not count), order-0 ones the per-CPU list could serve
    // included. Linux's first attempt checks the low watermark and wakes kswapd; this model
    // has no kswapd and makes its one check at min.
    if (!z.watermark_ok(order, z.watermarks().min, classzone)) continue;
    const Gfn g = z.rmqueue(cpu, order);
    if (g != Zone::kNoPage) return g;
  }
  return std::nullopt;
}

std::optional<Gfn> GuestKernel::alloc_pages(unsigned cpu, unsigned order) {
  std::optional<Gfn> g = alloc_from_zonelist(cpu, order);
  while (!g) {
    // Below the min watermark this model goes straight to the OOM path: it has no page
    // reclaim (no kswapd, no direct reclaim, no page cache or swap to reclaim from) and no
    // compaction. First the OOM notifiers (PageHooks::on_oom, e.g. the balloon's
    // deflate-on-OOM); if they freed pages, retry. Otherwise the OOM killer kills a process
    // and the allocation retries; with no process left to kill, it fails.
    std::uint64_t freed = 0;
    for (PageHooks* h : std::vector<PageHooks*>(map_.hooks)) freed += h->on_oom();
    if (freed > 0) {
      for (auto& z : zones_) z->drain_pcp();
      g = alloc_from_zonelist(cpu, order);
      continue;
    }
    if (!oom_kill()) {
      stats_.alloc_failures.add();
      return std::nullopt;
    }
    g = alloc_from_zonelist(cpu, order);
  }
  stats_.pages_allocated.add(1ULL << order);
  for (PageHooks* h : map_.hooks) h->on_alloc(*g, PageOrder{order});
  return g;
}

std::optional<Gfn> GuestKernel::try_alloc_pages(unsigned cpu, unsigned order) {
  const std::optional<Gfn> g = alloc_from_zonelist(cpu, order);
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
        // cleared whole (clear_huge_page), else the 4 KiB path below.
        if (const std::optional<Gfn> huge = try_alloc_pages(cpu, kPageblockOrder)) {
          for (std::uint64_t k = 0; k < kHugePages; ++k) {
            const Gfn g{huge->value() + static_cast<std::uint32_t>(k)};
            if (host_.write(vm_, g, kZeroContent) == WriteEffect::kFaultIn) result.host += fault;
            host_.write(vm_, g, content(r.touched));
            append_run(r.runs, g.value());
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
    const std::optional<Gfn> g = alloc_pages(cpu, 0);
    if (!p.alive) {
      // The OOM killer chose this process while it faulted.
      if (g) free_pages(cpu, *g, 0);
      result.status = TouchStatus::kKilled;
      break;
    }
    if (!g) {
      result.status = TouchStatus::kOutOfMemory;
      break;
    }
    Region& r = region(p, region_id);
    // The guest's fault handler clears the page, then the program writes its data.
    if (host_.write(vm_, *g, kZeroContent) == WriteEffect::kFaultIn) result.host += fault;
    host_.write(vm_, *g, content(r.touched));
    result.guest += fault + program_write;
    if (r.thp) r.huge.resize((r.touched + kHugePages) / kHugePages, false);
    append_run(r.runs, g->value());
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
  for (const GfnRun& run : r.runs) {
    const auto n = static_cast<std::uint64_t>(std::abs(run.count));
    if (page < n) {
      return Gfn{run.count > 0 ? run.first + static_cast<std::uint32_t>(page)
                               : run.first - static_cast<std::uint32_t>(page)};
    }
    page -= n;
  }
  throw std::out_of_range("region page not touched");
}

void GuestKernel::write(std::uint32_t pid, std::uint64_t region_id, std::uint64_t page,
                        Fingerprint fp) {
  Process& p = proc(pid);
  const Gfn g = region_gfn(region(p, region_id), page);
  if (host_.write(vm_, g, fp) != WriteEffect::kInPlace) {
    host_faults_.charge(costs_.cost(Op::kFirstTouchFault));
  }
  vcpu_.charge(costs_.cost(Op::kZeroFillPage));
}

Fingerprint GuestKernel::read(std::uint32_t pid, std::uint64_t region_id, std::uint64_t page) {
  Process& p = proc(pid);
  return host_.read(vm_, region_gfn(region(p, region_id), page));
}

CpuTime GuestKernel::release_region(Process& p, Region& r, unsigned cpu) {
  const CpuTime per_page = costs_.cost(Op::kMadviseDontneedBatched);
  std::uint64_t freed = 0;
  constexpr std::uint64_t kHugePages = 1ULL << kPageblockOrder;
  std::uint64_t index = 0;  // region page of the run's first page
  for (const GfnRun& run : r.runs) {
    const auto n = static_cast<std::uint32_t>(std::abs(run.count));
    for (std::uint32_t k = 0; k < n; ++k, ++index) {
      const std::uint64_t chunk = index / kHugePages;
      if (chunk < r.huge.size() && r.huge[chunk]) {
        // A huge page goes back whole, as one order-9 block, from its first page.
        if (index % kHugePages == 0) {
          free_pages(cpu, Gfn{run.count > 0 ? run.first + k : run.first - k}, kPageblockOrder);
        }
        continue;
      }
      free_pages(cpu, Gfn{run.count > 0 ? run.first + k : run.first - k}, 0);
    }
    freed += n;
  }
  r.huge.clear();
  r.runs.clear();
  r.runs.shrink_to_fit();
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
  pages = std::min(pages, r.touched);
  // Huge pages the tail reaches are split (split_huge_pmd): their pages go back one by one.
  const std::uint64_t first_chunk = (r.touched - pages) / (1ULL << kPageblockOrder);
  for (std::uint64_t c = first_chunk; c < r.huge.size(); ++c) r.huge[c] = false;
  std::uint64_t left = pages;
  while (left > 0) {
    GfnRun& run = r.runs.back();
    const auto n = static_cast<std::uint32_t>(std::abs(run.count));
    const std::uint32_t last = run.count > 0 ? run.first + n - 1 : run.first - (n - 1);
    free_pages(cpu, Gfn{last}, 0);
    if (n == 1) {
      r.runs.pop_back();
    } else {
      run.count += run.count > 0 ? -1 : 1;
    }
    --left;
  }
  r.touched -= pages;
  r.length_pages -= pages;
  p.rss_pages -= pages;
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

std::uint64_t GuestKernel::memory_bytes() const {
  std::uint64_t bytes = map_.pages.memory_bytes() + map_.lists.memory_bytes();
  for (const auto& p : processes_) {
    bytes += sizeof(Process);
    for (const auto& r : p.regions) bytes += sizeof(Region) + r.runs.capacity() * sizeof(GfnRun);
  }
  return bytes;
}

void GuestKernel::check(bool full) const {
  for (const auto& z : zones_) z->check(full);
  const std::uint64_t allocated = stats_.pages_allocated.value() - stats_.pages_freed.value();
  if (!full) return;
  std::vector<bool> owned(map_.pages.size());
  std::uint64_t owned_pages = 0;
  for (const auto& p : processes_) {
    std::uint64_t rss = 0;
    for (const auto& r : p.regions) {
      std::uint64_t in_runs = 0;
      for (const GfnRun& run : r.runs) {
        const auto n = static_cast<std::uint32_t>(std::abs(run.count));
        for (std::uint32_t k = 0; k < n; ++k) {
          const Gfn g{run.count > 0 ? run.first + k : run.first - k};
          if (owned[g.value()])
            throw std::logic_error(fmt::format("gfn {} owned twice", g.value()));
          owned[g.value()] = true;
          if (map_[g].state() != GuestPageState::kInUse) {
            throw std::logic_error(fmt::format("owned gfn {} is not in use", g.value()));
          }
        }
        in_runs += n;
      }
      if (in_runs != r.touched)
        throw std::logic_error("region runs disagree with its touched count");
      rss += in_runs;
    }
    if (rss != p.rss_pages) throw std::logic_error(fmt::format("pid {} rss mismatch", p.pid));
    owned_pages += rss;
  }
  std::uint64_t isolated = 0;
  for (std::uint32_t g = 0; g < map_.pages.size(); ++g) {
    const PageMeta m = map_[Gfn{g}];
    if (m.state() == GuestPageState::kIsolated || m.state() == GuestPageState::kOffline) {
      isolated += m.order().pages();
    }
  }
  if (free_pages() + pcp_pages() + allocated + isolated != map_.pages.size()) {
    throw std::logic_error(fmt::format(
        "guest pages do not add up: free {} + pcp {} + allocated {} + isolated {} != {}",
        free_pages(), pcp_pages(), allocated, isolated, map_.pages.size()));
  }
  if (owned_pages > allocated) throw std::logic_error("processes own more pages than allocated");
}

}  // namespace memvirt
