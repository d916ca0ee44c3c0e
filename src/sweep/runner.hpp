// The local pool: a sweep's runs on threads of this process, up to `jobs` at a time, each an
// independent experiment on its own scenario (runs share nothing mutable, as replicates do,
// scenario/replicates.hpp), so what each writes does not depend on how many run at once.
//
// Admission by memory: a run starts only while the estimates of the runs going on and its own
// (memory_estimate.hpp) fit in the budget; runs wait rather than exhaust the machine. A run
// larger than the whole budget, or with no estimate, starts only when nothing else runs.
//
// Resumable: a run whose folder already holds results.json beside a config.yaml of the same
// bytes (the same effective configuration, by its hash) is not run again. A run is written to
// a temporary folder beside its own, renamed into place once every file is whole, so an
// interrupted run never leaves a folder that looks finished.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sweep/plan.hpp"

namespace memvirt::sweep {

// Where the sweep is, for a progress display.
struct SweepBoard {
  std::size_t runs = 0;      // in the sweep
  std::size_t finished = 0;  // already done before this invocation (resumed)
  std::size_t done = 0;      // done by this invocation
  std::size_t failed = 0;
  std::size_t running = 0;
  std::size_t waiting_for_memory = 0;  // could start by `jobs`, not by memory
  double work_done = 0;  // of the runs this invocation makes: done ones 1, running ones their
                         // share of simulated time
  double elapsed_s = 0;  // wall time since the first run started
};

class SweepProgress {
 public:
  virtual ~SweepProgress() = default;
  // Calls come one at a time, from the threads running the runs and the coordinating one.
  virtual void update(const SweepBoard& board) = 0;
  virtual void run_done(const PlannedRun& run, double wall_s, const std::string& error) = 0;
};

struct PoolOptions {
  std::string out_dir;
  unsigned jobs = 1;
  std::uint64_t memory_budget = 0;  // bytes; 0: no limit
  SweepProgress* progress = nullptr;
};

struct PoolOutcome {
  std::vector<std::size_t> resumed;  // runs already done, by index
  std::vector<std::size_t> ran;
  std::vector<std::pair<std::size_t, std::string>> failed;  // run and its error
  std::size_t peak_running = 0;  // most runs at once (tests check admission with it)
};

// True when `dir` holds a finished run of exactly `config_text`.
bool run_is_done(const std::string& dir, const PlannedRun& run);

// Runs every run of `plan` not already done in `opt.out_dir`. A failing run stops the start
// of new ones; those going on finish and keep their results. Never throws for a run's
// failure: it is in `failed`.
PoolOutcome run_pool(const SweepPlan& plan, const PoolOptions& opt);

}  // namespace memvirt::sweep
