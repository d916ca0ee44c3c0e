// Experiments over a scenario, one family with a registry keyed by `experiment.type`:
// `fixed` runs N VMs; `density` searches the largest N whose host memory stays within the
// budget for the whole duration; `launch` starts VMs one after another until the budget is
// exceeded (seed 001's launch-until-OOM); `carry` searches the largest N the host's policy
// carries: no host or guest OOM kill, no workload ended early, no VM refused, and a slowdown
// against an unconstrained host within a bound.
//
// Contract: run() builds its own Simulations from the scenario (which it does not change) and
// returns what results.json reports; the progress sink, when given, sees every trial.
//
// With experiment.replicates above 1, run_experiment() runs the experiment that many times,
// each with its own seed (scenario/replicates.hpp), and returns every replicate's run.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/registry.hpp"
#include "scenario/simulation.hpp"

namespace memvirt {

struct Trial {
  unsigned vms = 0;
  bool fits = false;  // density: within the budget; carry: carried
  double peak_gib = 0;
  double exceeded_at_s = 0;
  std::optional<double> slowdown;  // carry: against the unconstrained host
  std::string why_not;             // carry: what made the count fail, for people
};

// One replicate of a replicated experiment: its seed and its run.
struct Replicate {
  std::uint64_t seed = 0;
  RunResult run;
};

struct ExperimentResult {
  std::string type;                  // the experiment's registered name, for the writers
  unsigned vms = 0;                  // VMs found (density), launched (launch) or run (fixed)
  std::optional<double> budget_gib;  // experiments judged against the VM budget
  std::optional<std::vector<Trial>> search;  // experiments that search a count
  bool launched_one_by_one = false;
  RunResult run;  // the run of `vms` VMs; replicated: replicate 0's (the scenario's seed)
  // Replicated experiments only (experiment.replicates > 1): every replicate, in order, the
  // first with the scenario's seed; the writers report their aggregate.
  std::vector<Replicate> replicates;
  Aggregate aggregate = Aggregate::kMean;
  // Fixed experiments with `baseline: true`: the same VMs on an unconstrained host (memory
  // for every guest, no policy), and how much slower the run was than it: completion time
  // over the baseline's, less one, or the baseline's operations per second over the run's,
  // less one, for workloads that run to the end.
  std::optional<RunResult> baseline;
  std::optional<double> slowdown;
  std::optional<double> max_slowdown;  // carry: the bound the count was judged against
};

// Where one replicate of a replicated experiment is.
struct ReplicateState {
  std::uint64_t seed = 0;
  double simulated_s = 0;  // virtual time simulated so far, of total_s
  double total_s = 0;
  bool started = false;
  bool done = false;
};

// Receives progress across the trials of an experiment.
class ExperimentProgress : public ProgressSink {
 public:
  virtual void begin_trial(unsigned vms) = 0;
  virtual void end_trial(const Trial& t) = 0;
  // Replicated experiments, instead of update(): where every replicate is, after one of them
  // started, advanced or finished; replicate_done() first when one finished. begin_trial()
  // comes once, before the first of these. The calls come one at a time, from the threads
  // running the replicates.
  virtual void replicates(std::span<const ReplicateState> /*all*/) {}
  virtual void replicate_done(std::size_t /*index*/, const Replicate& /*replicate*/) {}
};

class Experiment {
 public:
  virtual ~Experiment() = default;
  [[nodiscard]] virtual ExperimentResult run(const Scenario& s,
                                             ExperimentProgress* progress) const = 0;
};

using ExperimentRegistry = Registry<Experiment>;

// Every experiment, by its `type:` name (scenario/experiments.cpp: one line each).
ExperimentRegistry make_experiment_registry();

// Runs the scenario's experiment: once, or each of its replicates, on up to `jobs` threads at
// a time (each replicate an independent Simulation; the result does not depend on `jobs`).
ExperimentResult run_experiment(const Scenario& s, ExperimentProgress* progress = nullptr,
                                unsigned jobs = 1);

}  // namespace memvirt
