// Experiments over a scenario: `fixed` runs N VMs; `density` searches the largest N whose
// host memory stays within the budget for the whole duration.
#pragma once

#include <string>
#include <vector>

#include "scenario/simulation.hpp"

namespace memvirt {

struct Trial {
  unsigned vms = 0;
  bool fits = false;
  double peak_gib = 0;
  double exceeded_at_s = 0;
};

struct ExperimentResult {
  std::string type;
  unsigned vms = 0;  // VMs found (density) or run (fixed)
  double budget_gib = 0;
  RunResult run;  // the run of `vms` VMs
  std::vector<Trial> search;
};

// Receives progress across the trials of an experiment.
class ExperimentProgress : public ProgressSink {
 public:
  virtual void begin_trial(unsigned vms) = 0;
  virtual void end_trial(const Trial& t) = 0;
};

ExperimentResult run_experiment(const Scenario& s, ExperimentProgress* progress = nullptr);

}  // namespace memvirt
