// The guest kernel model: zones with buddy allocators and per-CPU lists, watermarks sized as
// Linux sizes them, processes with anonymous memory faulted in on first touch through the
// host's nested page table, Committed_AS, and the OOM killer. Reclaim mechanisms attach through
// PageHooks (hooks.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/cost.hpp"
#include "core/params.hpp"
#include "core/stats.hpp"
#include "guest/zone.hpp"
#include "host/host_memory.hpp"

namespace memvirt {

struct GuestKernelConfig {
  Bytes memory{4ULL << 30};
  unsigned vcpus = 1;
  // RAM below the PCI hole; DMA32 ends here and Normal holds the rest (QEMU pc machine:
  // 3 GiB when the guest has 3.5 GiB or more, else all of it).
  std::optional<Bytes> lowmem;
  std::uint64_t min_free_kbytes = 0;  // 0: Linux's default, sqrt(lowmem_kbytes * 16)
  std::uint64_t min_free_kbytes_max = 65536;
  std::uint32_t watermark_scale_factor = 10;
  Bytes pcp_batch_cap{512ULL * 1024};
  std::uint32_t pcp_high_factor = 6;
  bool shuffle =
      false;  // page_alloc.shuffle: randomized free lists (CONFIG_SHUFFLE_PAGE_ALLOCATOR)

  // Reads the guest kernel's parameters (all with Linux's defaults) from `p`.
  static GuestKernelConfig from_params(Params p, Bytes memory, unsigned vcpus);
};

struct GuestStats {
  Counter pages_allocated;
  Counter pages_freed;
  Counter anon_faults;
  Counter oom_kills;
  Counter alloc_failures;
  void visit(StatsVisitor& v) const {
    v.counter("pages_allocated", pages_allocated);
    v.counter("pages_freed", pages_freed);
    v.counter("anon_faults", anon_faults);
    v.counter("oom_kills", oom_kills);
    v.counter("alloc_failures", alloc_failures);
  }
};

// A contiguous run of guest pages backing consecutive virtual pages of a region, ascending
// (count > 0) or descending (count < 0) in gfn.
struct GfnRun {
  std::uint32_t first = 0;
  std::int32_t count = 0;
};

struct Region {
  std::uint64_t id = 0;
  std::uint64_t length_pages = 0;  // mapped (committed) size
  std::uint64_t touched = 0;       // pages faulted in so far, from the start of the region
  std::vector<GfnRun> runs;
  bool thp = false;        // transparent huge pages: faults fill 2 MiB at once when they can
  std::vector<bool> huge;  // per 512-page chunk of the region: backed by one order-9 block
};

struct Process {
  std::uint32_t pid = 0;
  std::string name;
  bool killable = true;
  bool alive = true;
  std::uint64_t rss_pages = 0;
  std::vector<Region> regions;
};

// What a program writes to a page it touches.
using ContentFn = std::function<Fingerprint(std::uint64_t page_index)>;

enum class TouchStatus : std::uint8_t { kDone, kKilled, kOutOfMemory };
struct TouchResult {
  TouchStatus status = TouchStatus::kDone;
  std::uint64_t pages = 0;  // pages touched by this call
  CpuTime guest{};          // CPU time on the vCPU (guest kernel and program)
  CpuTime host{};           // host time handling faults for this guest
};

class GuestKernel {
 public:
  // `vcpu` and `host_faults` receive the costs; `host` backs guest memory for VM `vm`.
  GuestKernel(const GuestKernelConfig& cfg, HostMemory& host, VmId vm, const CostProfile& costs,
              CostAccount& vcpu, CostAccount& host_faults);

  // Page allocator entry points (alloc_pages/free_pages), with the hooks. Order 0 goes
  // through the per-CPU lists. When every zone is below its min watermark, alloc_pages()
  // calls the OOM notifiers, then the OOM killer (which may kill the calling process), and
  // retries; there is no page reclaim. Returns nullopt when no killable process is left.
  std::optional<Gfn> alloc_pages(unsigned cpu, unsigned order);
  // An allocation that fails rather than wake the OOM killer (__GFP_NORETRY), as the
  // balloon driver allocates.
  std::optional<Gfn> try_alloc_pages(unsigned cpu, unsigned order);
  void free_pages(unsigned cpu, Gfn gfn, unsigned order);

  std::uint32_t spawn(const std::string& name, bool killable = true);
  // mmap of anonymous memory: commits `length` (Committed_AS) without touching it. With
  // `thp` (madvise(MADV_HUGEPAGE)), a fault at a 2 MiB boundary of the region allocates an
  // order-9 block and clears it whole, falling back to 4 KiB pages when none is free.
  std::uint64_t mmap(std::uint32_t pid, Bytes length, bool thp = false);
  // Touches the next `pages` untouched pages of the region (first-touch faults: allocate,
  // zero, then the program writes content(i) at region page i). Stops early when the
  // process is killed or the guest is out of memory with nothing to kill.
  // `fill`: the program writes whole pages (memset); otherwise it stores a byte per page,
  // whose cost is negligible beside the fault.
  TouchResult touch(std::uint32_t pid, std::uint64_t region, std::uint64_t pages,
                    const ContentFn& content, unsigned cpu = 0, bool fill = true);
  // A program write to an already touched region page.
  void write(std::uint32_t pid, std::uint64_t region, std::uint64_t page, Fingerprint fp);
  // What the program reads from an already touched region page.
  Fingerprint read(std::uint32_t pid, std::uint64_t region, std::uint64_t page);
  // munmap: frees the region's pages in address order. Returns the CPU time spent.
  CpuTime munmap(std::uint32_t pid, std::uint64_t region, unsigned cpu = 0);
  // Unmaps the last `pages` touched pages of a region (a partial munmap of its tail) and
  // shrinks its mapping by as much. Returns the CPU time spent.
  CpuTime munmap_tail(std::uint32_t pid, std::uint64_t region, std::uint64_t pages,
                      unsigned cpu = 0);
  // exit: unmaps every region of the process.
  CpuTime exit(std::uint32_t pid);

  [[nodiscard]] const Process* process(std::uint32_t pid) const;
  [[nodiscard]] std::uint64_t committed_as_pages() const { return committed_pages_; }
  [[nodiscard]] std::uint64_t free_pages() const;  // buddy free pages, all zones
  [[nodiscard]] std::uint64_t pcp_pages() const;
  [[nodiscard]] std::uint64_t total_pages() const { return map_.pages.size(); }
  [[nodiscard]] std::vector<std::unique_ptr<Zone>>& zones() { return zones_; }
  [[nodiscard]] const std::vector<std::unique_ptr<Zone>>& zones() const { return zones_; }
  Zone& zone_of(Gfn g);
  MemMap& memmap() { return map_; }
  [[nodiscard]] const GuestStats& stats() const { return stats_; }
  [[nodiscard]] HostMemory& host() { return host_; }
  [[nodiscard]] const CostProfile& costs() const { return costs_; }
  // Work a program does on the guest's vCPUs beyond what the kernel charges.
  void charge_vcpu(CpuTime t) { vcpu_.charge(t); }
  [[nodiscard]] VmId vm() const { return vm_; }
  [[nodiscard]] unsigned vcpus() const { return vcpus_; }
  void add_hooks(PageHooks* h) { map_.hooks.push_back(h); }
  void remove_hooks(PageHooks* h) { std::erase(map_.hooks, h); }
  [[nodiscard]] std::uint64_t memory_bytes() const;
  // Gfn of page `page` of a region (walks the region's runs).
  [[nodiscard]] Gfn region_gfn(const Region& r, std::uint64_t page) const;
  // Cheap or full consistency checks of every zone and of page ownership. Throws.
  void check(bool full) const;

 private:
  Process& proc(std::uint32_t pid);
  Region& region(Process& p, std::uint64_t id);
  // Kills the killable process with the largest RSS (oom_badness). False when none is left.
  bool oom_kill();
  CpuTime release_region(Process& p, Region& r, unsigned cpu);
  std::optional<Gfn> alloc_from_zonelist(unsigned cpu, unsigned order);
  void setup_watermarks(const GuestKernelConfig& cfg);

  HostMemory& host_;
  VmId vm_;
  const CostProfile& costs_;
  CostAccount& vcpu_;
  CostAccount& host_faults_;
  unsigned vcpus_;
  MemMap map_;
  std::vector<std::unique_ptr<Zone>> zones_;  // DMA, DMA32, Normal (low to high)
  std::vector<Process> processes_;
  std::uint64_t next_region_ = 1;
  std::uint64_t committed_pages_ = 0;
  GuestStats stats_;
};

}  // namespace memvirt
