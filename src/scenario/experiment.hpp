// Experiments over a scenario, one family with a registry keyed by `experiment.type`:
// `fixed` runs N VMs; `density` searches the largest N whose host memory stays within the
// budget for the whole duration; `launch` starts VMs one after another until the budget is
// exceeded (seed 001's launch-until-OOM).
//
// Contract: run() builds its own Simulations from the scenario (which it does not change) and
// returns what results.json reports; the progress sink, when given, sees every trial.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/registry.hpp"
#include "scenario/simulation.hpp"

namespace memvirt {

struct Trial {
  unsigned vms = 0;
  bool fits = false;
  double peak_gib = 0;
  double exceeded_at_s = 0;
};

struct ExperimentResult {
  std::string type;                  // the experiment's registered name, for the writers
  unsigned vms = 0;                  // VMs found (density), launched (launch) or run (fixed)
  std::optional<double> budget_gib;  // experiments judged against the VM budget
  std::optional<std::vector<Trial>> search;  // experiments that search a count
  bool launched_one_by_one = false;
  RunResult run;  // the run of `vms` VMs
};

// Receives progress across the trials of an experiment.
class ExperimentProgress : public ProgressSink {
 public:
  virtual void begin_trial(unsigned vms) = 0;
  virtual void end_trial(const Trial& t) = 0;
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

// Runs the scenario's experiment.
ExperimentResult run_experiment(const Scenario& s, ExperimentProgress* progress = nullptr);

}  // namespace memvirt
