// `memvirt bench dedup`: one content mix in real memory, deduplicated three ways in one run.
//   1. Linux's own KSM merges it (MADV_MERGEABLE, settings through sysfs, put back after).
//   2. memvirt's KSM model (reclaim/ksm.hpp) predicts the same run from calibrated costs.
//   3. memvirt's PageONE (real/pageone_real.hpp) merges it with real threads.
// Each phase samples the pages it saved over time until a steady state (steady_state.hpp)
// or a timeout. The phases return what they measured; report.hpp formats it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench_dedup/content_mix.hpp"
#include "bench_dedup/steady_state.hpp"
#include "core/cost.hpp"
#include "core/types.hpp"

namespace memvirt {

struct DedupKsmSettings {
  std::uint64_t pages_to_scan = 1000;
  std::uint32_t sleep_millisecs = 20;    // Linux default
  bool use_zero_pages = false;           // Linux default
  bool smart_scan = true;                // Linux default (6.7+)
  std::uint32_t max_page_sharing = 256;  // not set; read from the kernel when it has KSM
};

struct DedupBenchConfig {
  ContentMixConfig mix;
  DedupKsmSettings ksm;
  Duration rewrite_period = Duration::millis(100);  // the writer rewrites each page this often
  unsigned work_threads = 2;                        // PageONE
  Duration merge_period = Duration::seconds(1);     // PageONE
  unsigned stable_periods = 2;                      // PageONE (seed 000)
  Duration sample_interval = Duration::millis(100);
  SteadyStateRule rule;
  Duration timeout = Duration::seconds(600);  // per phase, without steady state
  bool run_real_ksm = true;
  bool run_model = true;
  bool run_pageone = true;
  std::filesystem::path ksm_sysfs = "/sys/kernel/mm/ksm";
  std::filesystem::path proc = "/proc";
  // Where the host's KSM settings are kept while changed (real/ksm_state.hpp); empty: the
  // default (ksm_state_dir_from_environment()).
  std::filesystem::path ksm_state_dir;
};

struct DedupSample {
  double t = 0;                 // seconds since the phase started merging
  std::uint64_t pages = 0;      // pages saved: pages_sharing (+ zero pages), or PageONE's
  double cpu_seconds = 0;       // of the dedup engine's threads since the start
  std::uint64_t rounds = 0;     // KSM full scans, or PageONE passes, since the start
  std::uint64_t scanned = 0;    // KSM: pages visited since the start (0 where not counted)
  std::uint64_t rss_bytes = 0;  // the process's RSS (real runs)
};

struct DedupPhaseResult {
  std::string name;
  std::string skipped;  // why the phase did not run; empty when it ran
  std::vector<DedupSample> timeline;
  std::optional<double> steady_time;  // seconds, when a steady state was reached
  DedupSample at_steady;              // the sample that started the steady window
  DedupSample last;
  std::uint64_t rss_before_fill = 0, rss_filled = 0;  // PageONE: the memory it was given
  std::vector<std::string> notes;
  [[nodiscard]] bool ran() const { return skipped.empty(); }
  // Pages saved per CPU-second of the engine, at the steady state.
  [[nodiscard]] std::optional<double> pages_per_cpu_second() const;
};

struct DedupBenchResult {
  DedupBenchConfig config;
  ContentMix mix;
  std::string cost_profile;  // where the model's costs came from
  DedupPhaseResult real_ksm, model_ksm, pageone;
  // PageONE's pages per CPU-second over real KSM's.
  [[nodiscard]] std::optional<double> efficiency_ratio() const;
  // The model's time to steady state over real KSM's.
  [[nodiscard]] std::optional<double> steady_time_ratio() const;
};

// Progress of the long phases, for a terminal line; called from the measuring thread.
class DedupProgress {
 public:
  virtual ~DedupProgress() = default;
  virtual void phase(std::string_view /*name*/) {}
  virtual void sample(std::string_view /*phase*/, const DedupSample& /*s*/) {}
  virtual void phase_done() {}
  // Something the user must hear now, whatever the progress display (e.g. host settings put
  // back from an interrupted run); also kept in the phase's notes.
  virtual void note(std::string_view /*message*/) {}
};

// The three phases; each also usable alone. The real phases throw Interrupted (interrupt.hpp)
// when a signal arrives under an InterruptGuard, after putting back what they changed.
DedupPhaseResult run_real_ksm(const DedupBenchConfig& cfg, const ContentMix& mix,
                              DedupProgress& progress);
DedupPhaseResult run_model_ksm(const DedupBenchConfig& cfg, const ContentMix& mix,
                               const CostProfile& costs, DedupProgress& progress);
DedupPhaseResult run_real_pageone(const DedupBenchConfig& cfg, const ContentMix& mix,
                                  DedupProgress& progress);

// All enabled phases, in order; the model uses the KSM settings the real run used.
DedupBenchResult run_dedup_bench(DedupBenchConfig cfg, const CostProfile& costs,
                                 std::string cost_profile, DedupProgress& progress);

}  // namespace memvirt
