// Throughput of PageONE over real memory: pages merged per second of wall time and per
// CPU-second of the work threads, on the content mix of `memvirt bench dedup` (64 MiB in 4
// regions: half common contents, a tenth zeros). Each iteration fills fresh memory (not
// timed), then runs the three merge passes that make its pages stable and merge them.
#include <benchmark/benchmark.h>

#include <memory>

#include "bench_dedup/content_mix.hpp"
#include "real/pageone_real.hpp"

namespace memvirt {
namespace {

void BM_RealPageOneMerge(benchmark::State& state) {
  ContentMixConfig mc;
  mc.total = Bytes{64ULL << 20};
  mc.rewritten = 0;  // no writer here: every page can be stable
  const ContentMix mix = make_content_mix(mc);
  RealPageOneConfig cfg;
  cfg.work_threads = static_cast<unsigned>(state.range(0));
  std::uint64_t merged = 0;
  double cpu = 0;
  std::unique_ptr<RealPageOne> mem;
  for (auto _ : state) {
    state.PauseTiming();
    mem.reset();  // the previous iteration's memory goes back untimed
    mem = std::make_unique<RealPageOne>(static_cast<std::uint32_t>(mix.pages.size()), cfg);
    for (std::size_t i = 0; i < mix.pages.size(); ++i) {
      const RealPageOne::Writer w = mem->write(static_cast<std::uint32_t>(i));
      generate_page_bytes(mix.pages[i], w.bytes());
    }
    state.ResumeTiming();
    for (unsigned p = 0; p <= cfg.stable_periods; ++p) cpu += mem->merge_pass().cpu_seconds;
    state.PauseTiming();
    merged += mem->pages_saved();
    state.ResumeTiming();
  }
  state.counters["pages_saved_per_s"] =
      benchmark::Counter(static_cast<double>(merged), benchmark::Counter::kIsRate);
  state.counters["pages_saved_per_cpu_s"] = static_cast<double>(merged) / cpu;
}
BENCHMARK(BM_RealPageOneMerge)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace memvirt
