#include "scenario/experiments.hpp"

#include <map>

#include "scenario/replicates.hpp"

namespace memvirt {
namespace {

VmCounts read_counts(Params& p, bool first_count_derived) {
  VmCounts c;
  c.max_vms = static_cast<unsigned>(p.integer(
      "max_vms", 4096, "density: upper bound of the search; launch: VMs at most", 1, 100000));
  if (first_count_derived) {
    // Optional first count tried by the search; 0 = as many as fit if every guest touched
    // all of its memory.
    c.vms = static_cast<unsigned>(
        p.integer("vms", 0, "first VM count the density search tries", 0, 100000));
  } else {
    c.vms = static_cast<unsigned>(p.integer("vms", 1, "number of VMs", 1, 100000));
  }
  return c;
}

}  // namespace

ExperimentRegistry make_experiment_registry() {
  ExperimentRegistry r("experiment kind", "type");
  r.add<FixedExperiment>("fixed");
  r.add<DensityExperiment>("density");
  r.add<LaunchExperiment>("launch");
  return r;
}

ExperimentResult run_experiment(const Scenario& s, ExperimentProgress* progress, unsigned jobs) {
  ExperimentResult out = s.experiment.replicates > 1 ? run_replicates(s, progress, jobs)
                                                     : s.experiment.spec->make()->run(s, progress);
  out.type = s.experiment.spec->name();
  return out;
}

FixedExperiment::Config FixedExperiment::config_from(Params& p) {
  VmCounts c = read_counts(p, false);
  c.baseline = p.boolean("baseline", false,
                         "also run the VMs on an unconstrained host (memory for every guest, no "
                         "policy) and report the slowdown against it");
  return c;
}

namespace {

std::optional<double> slowdown(const RunResult& run, const RunResult& baseline) {
  // A run whose workloads did not all do their work is not slower or faster: it failed.
  if (run.workloads_killed > 0 || baseline.workloads_killed > 0) return std::nullopt;
  if (run.completion_s && baseline.completion_s && *baseline.completion_s > 0) {
    return *run.completion_s / *baseline.completion_s - 1;
  }
  double ops = 0, base_ops = 0;
  for (const double v : run.workload_ops_per_s) ops += v;
  for (const double v : baseline.workload_ops_per_s) base_ops += v;
  if (ops > 0 && base_ops > 0) return base_ops / ops - 1;
  return std::nullopt;
}

}  // namespace

ExperimentResult FixedExperiment::run(const Scenario& s, ExperimentProgress* progress) const {
  ExperimentResult out;
  if (progress != nullptr) progress->begin_trial(cfg_.vms);
  Simulation sim(s, cfg_.vms);
  out.run = sim.run(progress);
  out.vms = cfg_.vms;
  if (cfg_.baseline) {
    Scenario unconstrained = s;
    unconstrained.policy.reset();
    const std::uint64_t guests = s.vm.max_memory.value() * cfg_.vms;
    unconstrained.host.memory = Bytes{s.host.memory.value() + guests};
    unconstrained.host.vm_budget = unconstrained.host.memory;
    if (progress != nullptr) progress->begin_trial(cfg_.vms);
    Simulation base(unconstrained, cfg_.vms);
    out.baseline = base.run(progress);
    out.slowdown = slowdown(out.run, *out.baseline);
  }
  return out;
}

LaunchExperiment::Config LaunchExperiment::config_from(Params& p) {
  return read_counts(p, true);
}

ExperimentResult LaunchExperiment::run(const Scenario& s, ExperimentProgress* progress) const {
  ExperimentResult out;
  out.budget_gib = s.host.vm_budget.gib();
  out.launched_one_by_one = true;
  if (progress != nullptr) progress->begin_trial(cfg_.max_vms);
  Simulation sim(s, cfg_.max_vms, LaunchOrder::kEachAfterThePrevious);
  out.run = sim.run(progress, s.host.vm_budget);
  out.vms = out.run.vms_completed;
  return out;
}

DensityExperiment::Config DensityExperiment::config_from(Params& p) {
  return read_counts(p, true);
}

ExperimentResult DensityExperiment::run(const Scenario& s, ExperimentProgress* progress) const {
  ExperimentResult out;
  out.budget_gib = s.host.vm_budget.gib();
  std::vector<Trial>& search = out.search.emplace();
  // A VM count fits when host memory never exceeds the budget. Runs of more VMs stop as soon
  // as it does. Exponential search for the first count that does not fit, then bisection;
  // every VM keeps its own random streams whatever the count, so counts compare.
  std::map<unsigned, RunResult> fitting;
  auto trial = [&](unsigned n) {
    if (progress != nullptr) progress->begin_trial(n);
    Simulation sim(s, n);
    RunResult r = sim.run(progress, s.host.vm_budget);
    Trial t{n, !r.exceeded && r.vms_killed == 0, r.host_peak_gib, r.exceeded_at_s};
    search.push_back(t);
    if (progress != nullptr) progress->end_trial(t);
    if (t.fits) fitting[n] = std::move(r);
    return t.fits;
  };
  // A first guess from the budget and the guest size: that many VMs fit even if every guest
  // touches all of its memory.
  unsigned lo = 0;
  unsigned hi = 0;
  unsigned n = cfg_.vms;
  if (n == 0)
    n = std::max<unsigned>(1,
                           static_cast<unsigned>(s.host.vm_budget.value() / s.vm.memory.value()));
  n = std::min(n, cfg_.max_vms);
  while (true) {
    if (trial(n)) {
      lo = n;
      if (n >= cfg_.max_vms) {
        hi = n + 1;
        break;
      }
      n = std::min(cfg_.max_vms, n * 2);
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
  if (lo > 0) out.run = std::move(fitting[lo]);
  return out;
}

}  // namespace memvirt
