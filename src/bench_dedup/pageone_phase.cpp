// Phase 3 of `memvirt bench dedup`: memvirt's PageONE over the same content in real memory,
// with real work threads, a merge pass every merge_period, and the same writer thread.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "bench_dedup/dedup_bench.hpp"
#include "bench_dedup/interrupt.hpp"
#include "bench_dedup/phase_util.hpp"
#include "real/pageone_real.hpp"
#include "real/process_memory.hpp"

namespace memvirt {

DedupPhaseResult run_real_pageone(const DedupBenchConfig& cfg, const ContentMix& mix,
                                  DedupProgress& progress) {
  DedupPhaseResult r;
  r.name = "PageONE";
  progress.phase(r.name);
  RealPageOneConfig pc;
  pc.work_threads = cfg.work_threads;
  pc.stable_periods = cfg.stable_periods;
  RealPageOne mem(static_cast<std::uint32_t>(mix.pages.size()), pc);
  r.rss_before_fill = process_rss_bytes();
  for (std::size_t i = 0; i < mix.pages.size(); ++i) {
    const RealPageOne::Writer w = mem.write(static_cast<std::uint32_t>(i));
    generate_page_bytes(mix.pages[i], w.bytes());
  }
  r.rss_filled = process_rss_bytes();

  const Rewriter writer(mix.rewritten, cfg.rewrite_period,
                        [&](std::uint32_t page, std::uint64_t gen) {
                          const RealPageOne::Writer w = mem.write(page);
                          const std::uint64_t word = rewrite_word(cfg.mix, page, gen);
                          std::memcpy(w.bytes().data(), &word, sizeof word);
                        });
  const auto t0 = BenchClock::now();
  const auto period = std::chrono::nanoseconds(cfg.merge_period.ns());
  const auto interval = std::chrono::nanoseconds(cfg.sample_interval.ns());
  auto next_pass = t0 + period;
  auto next_sample = t0 + interval;
  double cpu = 0;
  std::uint64_t passes = 0;
  SteadyStateDetector steady(cfg.rule);
  while (true) {
    std::this_thread::sleep_until(std::min(next_pass, next_sample));
    InterruptGuard::check();
    if (BenchClock::now() >= next_pass) {
      // The daemon's pass: the work threads' CPU time is the engine's cost.
      cpu += mem.merge_pass().cpu_seconds;
      ++passes;
      next_pass += period;
    }
    if (BenchClock::now() < next_sample) continue;
    next_sample += interval;
    DedupSample s;
    s.t = seconds_since(t0);
    s.pages = mem.pages_saved();
    s.cpu_seconds = cpu;
    s.rounds = passes;
    s.rss_bytes = process_rss_bytes();
    r.timeline.push_back(s);
    progress.sample(r.name, s);
    if (steady.add(s.t, s.pages, passes >= cfg.stable_periods + 1)) break;
    if (s.t >= cfg.timeout.seconds()) break;
  }
  if (steady.steady()) {
    r.steady_time = steady.time();
    r.at_steady = r.timeline[steady.index()];
  }
  r.last = r.timeline.back();
  r.notes.push_back(fmt::format("{} pages hashed, {} copy-on-write breaks by the writer",
                                mem.stats().pages_hashed.value(), mem.cow_breaks()));
  progress.phase_done();
  return r;
}

}  // namespace memvirt
