// The scenario experiments: fixed, density and launch.
#pragma once

#include "scenario/experiment.hpp"

namespace memvirt {

// How many VMs an experiment runs. Every kind reads both keys, so switching `type` with -p
// needs no other change.
struct VmCounts {
  unsigned vms = 1;         // fixed: VMs run; density: first count tried (0: derived)
  unsigned max_vms = 4096;  // density: upper bound of the search; launch: VMs at most
  bool baseline = false;    // fixed: also run on an unconstrained host, report the slowdown
};

// The experiments configured by VM counts.
class CountedExperiment : public Experiment {
 public:
  using Config = VmCounts;
  explicit CountedExperiment(Config c) : cfg_(c) {}

 protected:
  Config cfg_;
};

// `fixed`: experiment.vms VMs for the duration.
class FixedExperiment final : public CountedExperiment {
 public:
  using CountedExperiment::CountedExperiment;
  static Config config_from(Params& p);
  [[nodiscard]] ExperimentResult run(const Scenario& s,
                                     ExperimentProgress* progress) const override;
};

// `density`: the largest count whose host memory never exceeds the budget.
class DensityExperiment final : public CountedExperiment {
 public:
  using CountedExperiment::CountedExperiment;
  static Config config_from(Params& p);
  [[nodiscard]] ExperimentResult run(const Scenario& s,
                                     ExperimentProgress* progress) const override;
};

// `launch`: seed 001's procedure. VMs start one after another, each once the one before has
// run its programs, until host memory exceeds the budget (a guest would be killed).
class LaunchExperiment final : public CountedExperiment {
 public:
  using CountedExperiment::CountedExperiment;
  static Config config_from(Params& p);
  [[nodiscard]] ExperimentResult run(const Scenario& s,
                                     ExperimentProgress* progress) const override;
};

}  // namespace memvirt
