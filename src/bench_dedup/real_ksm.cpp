// Phase 1 of `memvirt bench dedup`: Linux's own KSM over the content mix.
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "bench_dedup/dedup_bench.hpp"
#include "bench_dedup/interrupt.hpp"
#include "bench_dedup/phase_util.hpp"
#include "real/ksm_state.hpp"
#include "real/ksm_sysfs.hpp"
#include "real/proc_stats.hpp"
#include "real/process_memory.hpp"

namespace memvirt {
namespace {

constexpr double kDrainSeconds = 30;  // at most this long for ksmd to forget the region

// Pages KSM saves: mappings of KSM pages beyond the first, and pages mapped to the zero page.
std::uint64_t ksm_saved(const KsmSysfs& fs) {
  std::uint64_t n = fs.read_number("pages_sharing");
  if (fs.has("ksm_zero_pages")) n += fs.read_number("ksm_zero_pages");
  return n;
}

}  // namespace

DedupPhaseResult run_real_ksm(const DedupBenchConfig& cfg, const ContentMix& mix,
                              DedupProgress& progress) {
  DedupPhaseResult r;
  r.name = "Linux KSM";
  const KsmSysfs fs(cfg.ksm_sysfs);
  if (!fs.available(r.skipped)) return r;
  const KsmStateStore store = cfg.ksm_state_dir.empty() ? KsmStateStore::from_environment()
                                                        : KsmStateStore(cfg.ksm_state_dir);
  // A run killed before it could put the settings back left them in a state file: the host's
  // own values go back first, so what is read below (and saved by the guard) is the host's.
  if (const std::optional<std::string> recovered = recover_ksm_settings(fs, store)) {
    r.notes.push_back(*recovered);
    progress.note(*recovered);
  }
  // KSM is one per host: if something else runs it, changing its settings would disturb that
  // user, and its merges would mix with ours.
  if (const std::string run = fs.read("run"); run != "0") {
    r.skipped = fmt::format(
        "KSM is already running (run={}, {} pages sharing): left alone; stop it first "
        "(echo 0 > {}/run) to measure it here",
        run, ksm_saved(fs), fs.root().string());
    return r;
  }
  const std::optional<int> ksmd = proc_find_comm("ksmd", cfg.proc);
  if (!ksmd) {
    r.skipped = "no ksmd thread in " + cfg.proc.string();
    return r;
  }
  progress.phase(r.name);
  auto region = std::make_unique<AnonRegion>(mix.pages.size());
  for (std::size_t i = 0; i < mix.pages.size(); ++i) {
    generate_page_bytes(mix.pages[i], region->page(i));
  }
  if (madvise(region->data(), region->bytes(), MADV_MERGEABLE) != 0) {
    r.skipped = fmt::format("madvise(MADV_MERGEABLE) failed: {}", std::strerror(errno));
    return r;
  }
  const std::uint64_t saved0 = ksm_saved(fs);
  const std::uint64_t scans0 = fs.read_number("full_scans");
  // pages_scanned exists since Linux 6.8.
  const bool counts_pages = fs.has("pages_scanned");
  const std::uint64_t scanned0 = counts_pages ? fs.read_number("pages_scanned") : 0;
  // Applied in order, `run` last; put back when this scope ends, however it ends.
  KsmSettingsGuard settings(fs,
                            {{"advisor_mode", "none"},
                             {"pages_to_scan", std::to_string(cfg.ksm.pages_to_scan)},
                             {"sleep_millisecs", std::to_string(cfg.ksm.sleep_millisecs)},
                             {"use_zero_pages", cfg.ksm.use_zero_pages ? "1" : "0"},
                             {"smart_scan", cfg.ksm.smart_scan ? "1" : "0"},
                             {"run", "1"}},
                            store);
  for (const std::string& knob : settings.skipped()) {
    r.notes.push_back("this kernel has no " + knob + " knob; left alone");
  }
  std::string disturbed;  // a knob another process changed during the measurement
  const auto t0 = BenchClock::now();
  const double cpu0 = proc_cpu_seconds(*ksmd, cfg.proc).value_or(0);
  const std::optional<double> wait0 = proc_wait_seconds(*ksmd, cfg.proc);
  {
    const Rewriter writer(mix.rewritten, cfg.rewrite_period,
                          [&](std::uint32_t page, std::uint64_t gen) {
                            const std::uint64_t w = rewrite_word(cfg.mix, page, gen);
                            std::memcpy(region->page(page).data(), &w, sizeof w);
                          });
    SteadyStateDetector steady(cfg.rule);
    const auto interval = std::chrono::nanoseconds(cfg.sample_interval.ns());
    for (std::uint64_t k = 1;; ++k) {
      std::this_thread::sleep_until(t0 + k * interval);
      InterruptGuard::check();
      DedupSample s;
      s.t = seconds_since(t0);
      const std::uint64_t saved = ksm_saved(fs);
      s.pages = saved > saved0 ? saved - saved0 : 0;
      s.rounds = fs.read_number("full_scans") - scans0;
      if (counts_pages) s.scanned = fs.read_number("pages_scanned") - scanned0;
      s.cpu_seconds = proc_cpu_seconds(*ksmd, cfg.proc).value_or(cpu0) - cpu0;
      s.rss_bytes = process_rss_bytes();
      r.timeline.push_back(s);
      progress.sample(r.name, s);
      if (const auto knob = settings.changed_by_others()) {
        disturbed = *knob;
        break;
      }
      if (steady.add(s.t, s.pages, s.rounds >= 2)) break;
      if (s.t >= cfg.timeout.seconds()) break;
    }
    if (steady.steady() && disturbed.empty()) {
      r.steady_time = steady.time();
      r.at_steady = r.timeline[steady.index()];
    }
    r.last = r.timeline.back();
  }
  if (!disturbed.empty()) {
    r.notes.push_back(fmt::format(
        "another process changed {} during the measurement: stopped, no result", disturbed));
  }
  if (const std::optional<double> wait = proc_wait_seconds(*ksmd, cfg.proc); wait && wait0) {
    r.notes.push_back(fmt::format(
        "ksmd waited {:.2f} s for a CPU while it ran {:.2f} s (other load on the machine)",
        *wait - *wait0, r.last.cpu_seconds));
  }
  // Unmap while ksmd still runs, so it drops this region's pages from its trees and the
  // counters return to where they were before the settings go back.
  region.reset();
  const auto drain0 = BenchClock::now();
  while (ksm_saved(fs) > saved0 && seconds_since(drain0) < kDrainSeconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (ksm_saved(fs) > saved0) {
    r.notes.push_back(
        fmt::format("ksmd had not dropped this run's pages after {:.0f} s", kDrainSeconds));
  }
  for (const std::string& problem : settings.restore()) {
    r.notes.push_back("not restored: " + problem);
  }
  progress.phase_done();
  return r;
}

}  // namespace memvirt
