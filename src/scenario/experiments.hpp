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

// `carry`: the largest count the host carries under its policy. A count is carried when, run
// for the duration, no VM is killed by the host's OOM killer or refused by the policy, no
// guest OOM-kills a process, no workload ends before its work is done, and the slowdown
// against the same VMs on an unconstrained host (memory for every guest, no policy) is at most
// `max_slowdown`: completion time, else operations per second, else the workloads' work time
// (FixedExperiment's baseline). Carrying is taken to fall with the count (exponential search,
// then bisection, as `density`).
struct CarryConfig {
  VmCounts counts;
  double max_slowdown = 0.10;
};

class CarryExperiment final : public Experiment {
 public:
  using Config = CarryConfig;
  explicit CarryExperiment(Config c) : cfg_(c) {}
  static Config config_from(Params& p);
  [[nodiscard]] ExperimentResult run(const Scenario& s,
                                     ExperimentProgress* progress) const override;

 private:
  Config cfg_;
};

}  // namespace memvirt
