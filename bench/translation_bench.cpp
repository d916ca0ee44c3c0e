// Speed of the translation model (references per second through TLB and walker, per mode),
// and two measurements the seed 004 scenarios use: the DRAM load latency of this machine (a
// dependent pointer chase over 1 GiB) and the time per reference of each workload's algorithm
// run natively with its reference stream discarded.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <span>

#include "core/params.hpp"
#include "core/rng.hpp"
#include "translation/guest_layout.hpp"
#include "translation/host_layout.hpp"
#include "translation/translator.hpp"
#include "translation/workloads/workload.hpp"

namespace {

using namespace memvirt;
using namespace memvirt::translation;

// A 1 GiB heap mapped with 4 KiB pages on both sides, and a random reference stream over it.
struct Fixture {
  Fixture() {
    const std::vector<Region> regions{{"heap", Gva{HeapLayout::kHeapBase}, 1ULL << 30}};
    GuestLayoutConfig gc;
    gc.memory = 2ULL << 30;
    gc.self_ballooning = true;
    gc.hot_unplug_io_gap = true;
    guest = build_guest_layout(regions, gc);
    HostLayoutConfig hc;
    hc.escaped_pages = 16;
    host = build_host_layout(guest, hc);
    Rng rng(1, "bench.refs");
    refs.resize(1 << 20);
    for (auto& r : refs) r = Gva{HeapLayout::kHeapBase + (rng.below(1ULL << 30) & ~7ULL)};
  }
  GuestLayout guest;
  HostLayout host;
  std::vector<Gva> refs;
};

Fixture& fixture() {
  static Fixture f;  // built once; benchmarks only read it
  return f;
}

void translate_bench(benchmark::State& state, Mode mode, bool model_data) {
  Fixture& f = fixture();
  TranslatorSetup s;
  s.mode = mode;
  s.model_data = model_data;
  s.cache.levels = {{32 << 10, 8, 4}, {256 << 10, 8, 12}, {15ULL << 20, 20, 28}};
  s.cache.memory_cycles = 200;
  s.guest_segment = f.guest.segment;
  s.vmm_segment = f.host.segment;
  Translator t(s, *f.guest.table, f.host.table.get(), f.host.filter.get(), &f.host.escaped);
  std::uint64_t sum = 0;
  for (auto _ : state) {
    for (const Gva va : f.refs) sum += t.translate(va).value();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * f.refs.size()));
  state.counters["walks_per_kiloref"] =
      1000.0 * static_cast<double>(t.stats().walks) / static_cast<double>(t.stats().references);
}

// Random references over 1 GiB: nearly every one misses the TLB, the worst case for speed.
void BM_TranslateRandom(benchmark::State& state) {
  translate_bench(state, static_cast<Mode>(state.range(0)), state.range(1) != 0);
  state.SetLabel(std::string(kModeNames[static_cast<std::size_t>(state.range(0))]) +
                 (state.range(1) ? " +data caches" : ""));
}
BENCHMARK(BM_TranslateRandom)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

// Sequential references (8-byte stride): mostly L1 TLB hits, the common case of real streams.
void BM_TranslateSequential(benchmark::State& state) {
  Fixture& f = fixture();
  TranslatorSetup s;
  s.mode = static_cast<Mode>(state.range(0));
  s.model_data = false;
  s.cache.memory_cycles = 200;
  s.guest_segment = f.guest.segment;
  s.vmm_segment = f.host.segment;
  Translator t(s, *f.guest.table, f.host.table.get(), f.host.filter.get(), &f.host.escaped);
  std::uint64_t va = HeapLayout::kHeapBase, sum = 0;
  constexpr std::uint64_t kBatch = 1 << 20;
  for (auto _ : state) {
    for (std::uint64_t i = 0; i < kBatch; ++i) {
      sum += t.translate(Gva{va}).value();
      va = HeapLayout::kHeapBase + ((va - HeapLayout::kHeapBase + 8) & ((1ULL << 30) - 1));
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
  state.SetLabel(std::string(kModeNames[static_cast<std::size_t>(state.range(0))]));
}
BENCHMARK(BM_TranslateSequential)->DenseRange(0, 5)->Unit(benchmark::kMillisecond);

// Each seed 004 workload's own reference stream through the MMU model at the settings of
// scenarios/seed004-bigmemory.yaml (walk caches, data references through the caches), at the
// workload sizes of BM_WorkloadNative. The stream is recorded first (untimed); the first
// million references warm the TLBs and caches, untimed too.
void BM_TranslateWorkload(benchmark::State& state, const std::string& yaml) {
  const auto mode = static_cast<Mode>(state.range(0));
  auto ctx = std::make_shared<ParamContext>("bench");
  const auto w = make_workload(Params(YAML::Load(yaml), "", ctx), 1)();
  constexpr std::uint64_t kWarm = 1'000'000, kTimed = 4'000'000;
  std::vector<Gva> refs;
  refs.reserve(kWarm + kTimed);
  RefSink sink(kWarm + kTimed,
               [&](std::span<const Gva> r) { refs.insert(refs.end(), r.begin(), r.end()); });
  w->run(sink);
  sink.finish();
  std::uint64_t footprint = 0;
  for (const Region& r : w->regions()) footprint += r.bytes;
  GuestLayoutConfig gc;
  // As the scenario: footprint x 1.33, rounded up to GiB, at least 2 GiB.
  gc.memory = std::max<std::uint64_t>(
      (static_cast<std::uint64_t>(static_cast<double>(footprint) * 1.33) + (1ULL << 30) - 1) >>
          30 << 30,
      2ULL << 30);
  gc.below_4g = 3584ULL << 20;
  gc.self_ballooning = true;
  gc.hot_unplug_io_gap = true;
  const GuestLayout guest = build_guest_layout(w->regions(), gc);
  HostLayoutConfig hc;
  hc.escaped_pages = 16;
  const HostLayout host = build_host_layout(guest, hc);
  TranslatorSetup s;
  s.mode = mode;
  s.walk_cache = WalkCacheConfig{2, 4, 32};
  s.cache.levels = {{32 << 10, 8, 4}, {256 << 10, 8, 12}, {15ULL << 20, 20, 30}};
  s.cache.memory_cycles = 132;
  s.guest_segment = guest.segment;
  s.vmm_segment = host.segment;
  Translator t(s, *guest.table, host.table.get(), host.filter.get(), &host.escaped);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < kWarm && i < refs.size(); ++i) sum += t.translate(refs[i]).value();
  t.reset_stats();
  const std::span<const Gva> timed(refs.data() + std::min<std::size_t>(kWarm, refs.size()),
                                   refs.size() - std::min<std::size_t>(kWarm, refs.size()));
  for (auto _ : state) {
    for (const Gva va : timed) sum += t.translate(va).value();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * timed.size()));
  const TranslatorStats& st = t.stats();
  state.counters["walks_per_kiloref"] =
      1000.0 * static_cast<double>(st.walks) / static_cast<double>(st.references);
  state.counters["walk_refs_per_walk"] =
      st.walks ? static_cast<double>(st.walk_refs) / static_cast<double>(st.walks) : 0.0;
  state.SetLabel(std::string(kModeNames[static_cast<std::size_t>(mode)]));
}
BENCHMARK_CAPTURE(BM_TranslateWorkload, gups, std::string("{type: gups, log2_words: 27}"))
    ->Arg(0)
    ->Arg(2)
    ->Arg(3)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_TranslateWorkload, graph500, std::string("{type: graph500, scale: 22}"))
    ->Arg(0)
    ->Arg(2)
    ->Arg(3)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_TranslateWorkload, memcached, std::string("{type: memcached, items: 4000000}"))
    ->Arg(0)
    ->Arg(2)
    ->Arg(3)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_TranslateWorkload, npb_cg,
                  std::string("{type: npb_cg, na: 75000, nonzer: 13}"))
    ->Arg(0)
    ->Arg(2)
    ->Arg(3)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

// DRAM latency: a dependent chase through a random cyclic permutation of 1 GiB of 64-byte
// lines (Sattolo's algorithm), so every load misses every cache level.
void BM_DramPointerChase(benchmark::State& state) {
  const std::size_t lines = (1ULL << 30) / 64;
  // 2 MiB pages where the kernel allows them, so the chase measures memory rather than this
  // machine's own TLB misses.
  void* raw = std::aligned_alloc(1ULL << 21, lines * 64);
  ::madvise(raw, lines * 64, MADV_HUGEPAGE);
  std::span<std::uint64_t> next(static_cast<std::uint64_t*>(raw), lines * 8);
  std::vector<std::uint32_t> order(lines);
  std::iota(order.begin(), order.end(), 0);
  Rng rng(3, "bench.chase");
  for (std::size_t i = lines - 1; i > 0; --i) std::swap(order[i], order[rng.below(i)]);
  for (std::size_t i = 0; i < lines; ++i) next[order[i] * 8ULL] = order[(i + 1) % lines] * 8ULL;
  std::uint64_t at = 0;
  constexpr int kLoads = 1 << 22;
  for (auto _ : state) {
    for (int i = 0; i < kLoads; ++i) at = next[at];
  }
  benchmark::DoNotOptimize(at);
  std::free(raw);
  state.SetItemsProcessed(state.iterations() * kLoads);
  state.counters["ns_per_load"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kLoads,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_DramPointerChase)->Unit(benchmark::kMillisecond)->Iterations(3);

// Native time per reference of each workload's algorithm (stream discarded), at the sizes of
// scenarios/seed004-bigmemory.yaml.
void BM_WorkloadNative(benchmark::State& state, const std::string& yaml) {
  auto ctx = std::make_shared<ParamContext>("bench");
  const WorkloadFactory make = make_workload(Params(YAML::Load(yaml), "", ctx), 1);
  const auto w = make();
  constexpr std::uint64_t kRefs = 50'000'000;
  std::uint64_t total = 0;
  for (auto _ : state) {
    RefSink sink(kRefs, [&](std::span<const Gva> refs) { total += refs.size(); });
    w->run(sink);
    sink.finish();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  state.counters["ns_per_ref"] = benchmark::Counter(
      static_cast<double>(total), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK_CAPTURE(BM_WorkloadNative, gups, std::string("{type: gups, log2_words: 27}"))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK_CAPTURE(BM_WorkloadNative, graph500, std::string("{type: graph500, scale: 22}"))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK_CAPTURE(BM_WorkloadNative, memcached, std::string("{type: memcached, items: 4000000}"))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK_CAPTURE(BM_WorkloadNative, npb_cg, std::string("{type: npb_cg, na: 75000, nonzer: 13}"))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

}  // namespace
