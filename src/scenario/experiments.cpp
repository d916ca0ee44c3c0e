#include "scenario/experiments.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <functional>
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
  r.add<CarryExperiment>("carry");
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

double sum(const std::vector<double>& v) {
  double total = 0;
  for (const double x : v) total += x;
  return total;
}

// How much slower `run` did its work than `baseline`: by completion time when both ended, else
// by operations per second, else by the time spent on work the clock paces.
std::optional<double> slowdown(const RunResult& run, const RunResult& baseline) {
  // A run whose workloads did not all do their work is not slower or faster: it failed.
  if (run.workloads_killed > 0 || baseline.workloads_killed > 0) return std::nullopt;
  if (run.completion_s && baseline.completion_s && *baseline.completion_s > 0) {
    return *run.completion_s / *baseline.completion_s - 1;
  }
  const double ops = sum(run.workload_ops_per_s);
  const double base_ops = sum(baseline.workload_ops_per_s);
  if (ops > 0 && base_ops > 0) return base_ops / ops - 1;
  if (run.work_s > 0 && baseline.work_s > 0) return run.work_s / baseline.work_s - 1;
  return std::nullopt;
}

// The same VMs on a host with memory for every guest's whole size and no policy.
RunResult run_unconstrained(const Scenario& s, unsigned vms, ExperimentProgress* progress) {
  Scenario unconstrained = s;
  unconstrained.policy.reset();
  const std::uint64_t guests = s.vm.max_memory.value() * vms;
  unconstrained.host.memory = Bytes{s.host.memory.value() + guests};
  unconstrained.host.vm_budget = unconstrained.host.memory;
  if (progress != nullptr) progress->begin_trial(vms);
  Simulation base(unconstrained, vms);
  return base.run(progress);
}

// The largest count in [1, max] that passes, starting from `first`: doubling until a count
// fails, then bisection; 0 when none does. Takes passing to fall with the count.
unsigned largest_passing(unsigned first, unsigned max,
                         const std::function<bool(unsigned)>& passes) {
  unsigned lo = 0;
  unsigned hi = 0;
  unsigned n = std::clamp(first, 1U, max);
  while (true) {
    if (passes(n)) {
      lo = n;
      if (n >= max) {
        hi = n + 1;
        break;
      }
      n = std::min(max, n * 2);
    } else {
      hi = n;
      break;
    }
  }
  while (hi - lo > 1) {
    const unsigned mid = lo + (hi - lo) / 2;
    if (passes(mid)) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// A first count for a search: as many VMs as fit in the budget if every guest touched all of
// its memory.
unsigned first_count(const Scenario& s, const VmCounts& c) {
  if (c.vms > 0) return c.vms;
  return std::max<unsigned>(1,
                            static_cast<unsigned>(s.host.vm_budget.value() / s.vm.memory.value()));
}

}  // namespace

ExperimentResult FixedExperiment::run(const Scenario& s, ExperimentProgress* progress) const {
  ExperimentResult out;
  if (progress != nullptr) progress->begin_trial(cfg_.vms);
  Simulation sim(s, cfg_.vms);
  out.run = sim.run(progress);
  out.vms = cfg_.vms;
  if (cfg_.baseline) {
    out.baseline = run_unconstrained(s, cfg_.vms, progress);
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
  const unsigned lo = largest_passing(first_count(s, cfg_), cfg_.max_vms, trial);
  out.vms = lo;
  if (lo > 0) out.run = std::move(fitting[lo]);
  return out;
}

CarryExperiment::Config CarryExperiment::config_from(Params& p) {
  CarryConfig c;
  c.counts = read_counts(p, true);
  c.max_slowdown = p.real("max_slowdown", 0.10,
                          "the largest slowdown against an unconstrained host that still counts "
                          "as carried (0.1: 10%)",
                          0, 100);
  return c;
}

namespace {

// Why a run does not carry its VMs, or nothing when it does.
std::string why_not_carried(const RunResult& r, const RunResult& base,
                            const std::optional<double>& slowdown, double max_slowdown) {
  std::vector<std::string> why;
  if (r.vms_killed > 0) why.push_back(fmt::format("{} VMs killed by the host", r.vms_killed));
  if (r.vms_refused > 0) why.push_back(fmt::format("{} VMs refused by the policy", r.vms_refused));
  if (r.guest_oom_kills > 0) why.push_back(fmt::format("{} guest OOM kills", r.guest_oom_kills));
  if (r.workloads_killed > 0) {
    why.push_back(fmt::format("{} workloads ended early", r.workloads_killed));
  }
  if (!why.empty()) return fmt::format("{}", fmt::join(why, ", "));
  if (base.completion_s && !r.completion_s) {
    return fmt::format("workloads not done by the end (unconstrained: done at {:.1f} s)",
                       *base.completion_s);
  }
  if (!slowdown) {
    return "no slowdown to measure: the workloads did not finish within the duration even "
           "unconstrained, and count neither operations nor paced work";
  }
  if (*slowdown > max_slowdown) {
    return fmt::format("slowdown {:+.1f}% above {:+.1f}%", 100 * *slowdown, 100 * max_slowdown);
  }
  return "";
}

}  // namespace

ExperimentResult CarryExperiment::run(const Scenario& s, ExperimentProgress* progress) const {
  ExperimentResult out;
  out.max_slowdown = cfg_.max_slowdown;
  std::vector<Trial>& search = out.search.emplace();
  struct Carried {
    RunResult run, baseline;
    std::optional<double> slowdown;
  };
  std::map<unsigned, Carried> carried;
  auto trial = [&](unsigned n) {
    if (progress != nullptr) progress->begin_trial(n);
    Simulation sim(s, n);
    RunResult r = sim.run(progress);
    RunResult base = run_unconstrained(s, n, progress);
    const std::optional<double> sd = slowdown(r, base);
    Trial t{n,
            false,
            r.host_peak_gib,
            r.exceeded_at_s,
            sd,
            why_not_carried(r, base, sd, cfg_.max_slowdown)};
    t.fits = t.why_not.empty();
    search.push_back(t);
    if (progress != nullptr) progress->end_trial(t);
    if (t.fits) carried[n] = Carried{std::move(r), std::move(base), sd};
    return t.fits;
  };
  out.vms = largest_passing(first_count(s, cfg_.counts), cfg_.counts.max_vms, trial);
  if (out.vms > 0) {
    Carried& c = carried[out.vms];
    out.run = std::move(c.run);
    out.baseline = std::move(c.baseline);
    out.slowdown = c.slowdown;
  }
  return out;
}

}  // namespace memvirt
