// Speed and memory of the guest and host models. Targets (issue: foundation): at least 10
// million simulated guest page allocations plus frees per second on one core, and at most 16
// bytes of simulator memory per guest page the guest has touched.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

}  // namespace
}  // namespace memvirt

BENCHMARK_MAIN();
