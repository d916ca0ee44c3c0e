// Speed and memory of the guest and host models. Targets: at least 10 million simulated guest
// page allocations plus frees per second on one core, and at most 16 bytes of simulator
// memory per guest page the guest has touched (seed 000's workload); at least 10 million
// guest page operations (fault, free, evict, refault) per second and at most 24 bytes per
// resident guest page, anonymous or page cache, with the page cache and swap in use.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "guest/block.hpp"
#include "guest/kernel.hpp"
#include "host/host_memory.hpp"
#include "real/process_memory.hpp"
#include "scenario/simulation.hpp"

namespace memvirt {
namespace {

CostProfile profile() {
  return CostProfile::load(std::string(MEMVIRT_SOURCE_DIR) + "/profiles/default.yaml");
}

struct Guest {
  Guest()
      : costs(profile()), host(std::make_unique<FingerprintStore>()), vcpu("v", 1), faults("f", 1) {
    GuestKernelConfig cfg;
    cfg.memory = Bytes{4ULL << 30};
    vm = host.add_vm(cfg.memory);
    kernel = std::make_unique<GuestKernel>(cfg, host, vm, costs, vcpu, faults);
  }
  CostProfile costs;
  HostMemory host;
  CostAccount vcpu, faults;
  VmId vm;
  std::unique_ptr<GuestKernel> kernel;
};

// The page allocator alone: alloc_pages/free_pages of order 0 through the per-CPU lists and
// the buddy lists, in batches of `range(0)` pages.
void BM_GuestPageAllocFree(benchmark::State& state) {
  Guest g;
  const auto batch = static_cast<std::size_t>(state.range(0));
  std::vector<Gfn> pages(batch);
  for (auto _ : state) {
    for (std::size_t i = 0; i < batch; ++i) pages[i] = *g.kernel->alloc_pages(0, 0);
    for (std::size_t i = 0; i < batch; ++i) g.kernel->free_pages(0, pages[i], 0);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch * 2));
  state.counters["allocs_plus_frees_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * batch * 2), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_GuestPageAllocFree)->Arg(64)->Arg(1024)->Arg(262144);

// A program's whole path: mmap, first-touch faults through the nested page table with
// content writes, munmap.
void BM_TouchAndUnmap(benchmark::State& state) {
  Guest g;
  const auto pid = g.kernel->spawn("bench");
  const std::uint64_t pages = 16384;  // 64 MiB
  std::uint64_t n = 0;
  for (auto _ : state) {
    const auto r = g.kernel->mmap(pid, Bytes::from_pages(pages));
    g.kernel->touch(pid, r, pages, [&](std::uint64_t) { return make_fingerprint(++n); });
    g.kernel->munmap(pid, r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * pages * 2));
}
BENCHMARK(BM_TouchAndUnmap);

// Simulator memory per touched guest page on seed 000's raw workload (32 VMs, 40 minutes:
// every VM has booted and run one period).
void BM_MemoryPerTouchedPage(benchmark::State& state) {
  const std::string file = std::string(MEMVIRT_SOURCE_DIR) + "/scenarios/seed000-raw.yaml";
  const Scenario s = load_scenario(
      file, {"experiment.type=fixed", "experiment.vms=32", "experiment.duration=40min",
             "experiment.warmup=0s", "experiment.checks=none"});
  RunResult r;
  double rss_delta = 0;
  for (auto _ : state) {
    const std::uint64_t before = process_rss_bytes();
    Simulation sim(s, 32);
    r = sim.run();
    // Everything the simulation holds, allocator overhead included, while it is alive.
    rss_delta = static_cast<double>(process_rss_bytes() - before);
  }
  state.counters["rss_bytes_per_touched_page"] = rss_delta / static_cast<double>(r.touched_pages);
  state.counters["touched_pages"] = static_cast<double>(r.touched_pages);
  state.counters["model_bytes"] = static_cast<double>(r.simulator_bytes);
  state.counters["bytes_per_touched_page"] =
      static_cast<double>(r.simulator_bytes) / static_cast<double>(r.touched_pages);
}
BENCHMARK(BM_MemoryPerTouchedPage)->Unit(benchmark::kSecond)->Iterations(1);

// A guest with a disk and swap: the page cache and the anonymous memory under reclaim.
struct DiskGuest {
  explicit DiskGuest(Bytes memory, Bytes swap)
      : costs(profile()),
        host(std::make_unique<FingerprintStore>()),
        vcpu("v", 1),
        faults("f", 1),
        disk(queue, Duration{0}) {
    GuestKernelConfig cfg;
    cfg.memory = memory;
    cfg.swap = swap;
    vm = host.add_vm(cfg.memory);
    kernel = std::make_unique<GuestKernel>(cfg, host, vm, costs, vcpu, faults);
    kernel->attach_disk(queue, disk, (256ULL << 30) / kSectorSize);
    pid = kernel->spawn("bench");
  }
  // Reads pages [first, first + n) of `f`, running the disk's completions as it waits.
  void read(FileId f, std::uint64_t first, std::uint64_t n) {
    std::uint64_t done = 0;
    while (done < n) {
      const TouchResult r = kernel->read_file(pid, f, first + done, n - done);
      done += r.pages;
      if (r.status == TouchStatus::kBlocked) {
        bool woke = false;
        kernel->when_done(r.wait, [&] { woke = true; });
        while (!woke && queue.step(TimePoint::max())) {
        }
      } else if (r.status != TouchStatus::kDone) {
        break;
      }
    }
  }
  CostProfile costs;
  HostMemory host;
  CostAccount vcpu, faults;
  EventQueue queue;
  FixedLatencyDisk disk;
  VmId vm;
  std::unique_ptr<GuestKernel> kernel;
  std::uint32_t pid = 0;
};

// Guest page operations through the page cache: a file twice the size of a 1 GiB guest read
// over and over, so that every page read is a fault into the page cache (an allocation), an
// eviction (a free, after the first pass) and, from the second pass, a refault.
void BM_GuestPageCacheOps(benchmark::State& state) {
  DiskGuest g(Bytes{1ULL << 30}, Bytes{0});
  const std::uint64_t pages = (2ULL << 30) / kPageSize;
  const FileId f = g.kernel->create_file(Bytes::from_pages(pages), 1);
  g.read(f, 0, pages);  // warm: the page cache is full and reclaim runs from here on
  const std::uint64_t ops_before = g.kernel->stats().pages_allocated.value() +
                                   g.kernel->stats().pgsteal.value() +
                                   g.kernel->stats().refaults.value();
  for (auto _ : state) g.read(f, 0, pages);
  const std::uint64_t ops = g.kernel->stats().pages_allocated.value() +
                            g.kernel->stats().pgsteal.value() + g.kernel->stats().refaults.value() -
                            ops_before;
  state.counters["page_ops_per_s"] =
      benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
  state.counters["ops_per_page_read"] =
      static_cast<double>(ops) / static_cast<double>(pages * state.iterations());
}
BENCHMARK(BM_GuestPageCacheOps)->Unit(benchmark::kMillisecond);

// Simulator memory per resident guest page with the page cache and swap in use: a 4 GiB
// guest that read 1.5 GiB of files, then touched 4.5 GiB of anonymous memory: most of the
// page cache is evicted (shadow entries stay) and part of the anonymous memory is swapped. Guest
// and host model bytes over resident pages.
void BM_MemoryPerResidentPage(benchmark::State& state) {
  std::uint64_t resident = 0, guest_bytes = 0, host_bytes = 0;
  for (auto _ : state) {
    DiskGuest g(Bytes{4ULL << 30}, Bytes{2ULL << 30});
    std::vector<FileId> files;
    for (int i = 0; i < 6; ++i) {
      files.push_back(g.kernel->create_file(Bytes{256ULL << 20}, 10 + i));
      g.read(files.back(), 0, (256ULL << 20) / kPageSize);
    }
    const std::uint64_t region = g.kernel->mmap(g.pid, Bytes{(9ULL << 30) / 2});
    std::uint64_t n = 0;
    std::uint64_t touched = 0;
    const std::uint64_t want = ((9ULL << 30) / 2) / kPageSize;
    while (touched < want) {
      const TouchResult r = g.kernel->touch(g.pid, region, want - touched,
                                            [&](std::uint64_t) { return make_fingerprint(++n); });
      touched += r.pages;
      if (r.status == TouchStatus::kBlocked) {
        bool woke = false;
        g.kernel->when_done(r.wait, [&] { woke = true; });
        while (!woke && g.queue.step(TimePoint::max())) {
        }
      } else if (r.status != TouchStatus::kDone) {
        break;
      }
    }
    const Meminfo m = g.kernel->meminfo();
    resident = m.cached + m.active_anon + m.inactive_anon;
    guest_bytes = g.kernel->memory_bytes();
    host_bytes = g.host.memory_bytes();
    state.counters["swapped_pages"] = static_cast<double>(m.swap_total - m.swap_free);
  }
  state.counters["resident_pages"] = static_cast<double>(resident);
  state.counters["guest_bytes_per_resident_page"] =
      static_cast<double>(guest_bytes) / static_cast<double>(resident);
  state.counters["bytes_per_resident_page"] =
      static_cast<double>(guest_bytes + host_bytes) / static_cast<double>(resident);
}
BENCHMARK(BM_MemoryPerResidentPage)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace
}  // namespace memvirt

BENCHMARK_MAIN();
