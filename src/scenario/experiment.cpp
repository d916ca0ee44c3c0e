#include "scenario/experiment.hpp"

#include <map>

namespace memvirt {

ExperimentResult run_experiment(const Scenario& s, ExperimentProgress* progress) {
  ExperimentResult out;
  out.type = s.experiment.type;
  out.budget_gib = s.host.vm_budget.gib();
  if (s.experiment.type == "fixed") {
    if (progress != nullptr) progress->begin_trial(s.experiment.vms);
    Simulation sim(s, s.experiment.vms);
    out.run = sim.run(progress);
    out.vms = s.experiment.vms;
    return out;
  }
  if (s.experiment.type == "launch") {
    // Seed 001's procedure: launch VMs one after another, each once the one before has run
    // its programs, until host memory exceeds the budget (a guest would be killed).
    if (progress != nullptr) progress->begin_trial(s.experiment.max_vms);
    Simulation sim(s, s.experiment.max_vms);
    out.run = sim.run(progress, s.host.vm_budget);
    out.vms = out.run.vms_completed;
    return out;
  }
  // Density: a VM count fits when host memory never exceeds the budget. Runs of more VMs
  // stop as soon as it does. Exponential search for the first count that does not fit, then
  // bisection; every VM keeps its own random streams whatever the count, so counts compare.
  std::map<unsigned, RunResult> fitting;
  auto trial = [&](unsigned n) {
    if (progress != nullptr) progress->begin_trial(n);
    Simulation sim(s, n);
    RunResult r = sim.run(progress, s.host.vm_budget);
    Trial t{n, !r.exceeded && r.vms_killed == 0, r.host_peak_gib, r.exceeded_at_s};
    out.search.push_back(t);
    if (progress != nullptr) progress->end_trial(t);
    if (t.fits) fitting[n] = std::move(r);
    return t.fits;
  };
  // A first guess from the budget and the guest size: that many VMs fit even if every guest
  // touches all of its memory.
  unsigned lo = 0;
  unsigned hi = 0;
  unsigned n = s.experiment.vms;
  if (n == 0)
    n = std::max<unsigned>(1,
                           static_cast<unsigned>(s.host.vm_budget.value() / s.vm.memory.value()));
  n = std::min(n, s.experiment.max_vms);
  while (true) {
    if (trial(n)) {
      lo = n;
      if (n >= s.experiment.max_vms) {
        hi = n + 1;
        break;
      }
      n = std::min(s.experiment.max_vms, n * 2);
    } else {
      hi = n;
      break;
    }
  }
  while (hi - lo > 1) {
    const unsigned mid = lo + (hi - lo) / 2;
    if (trial(mid)) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  out.vms = lo;
  if (lo > 0) {
    out.run = std::move(fitting[lo]);
  }
  return out;
}

}  // namespace memvirt
