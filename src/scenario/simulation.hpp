// One simulated host running N VMs of a scenario for its duration: the event loop, VM
// launch and boot, workloads, host OOM handling, the epoch sampler and invariant checks.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "core/cost.hpp"
#include "core/event_queue.hpp"
#include "core/stats.hpp"
#include "guest/kernel.hpp"
#include "host/host_memory.hpp"
#include "scenario/scenario.hpp"
#include "workload/workload.hpp"

namespace memvirt {

struct AccountSummary {
  std::string name;
  unsigned threads = 0;
  double cpu_percent = 0;  // of one core, averaged per thread
  double cpu_seconds = 0;
};

struct RunResult {
  unsigned vms = 0;            // VMs launched
  unsigned vms_completed = 0;  // VMs whose workloads all ended (finite workloads only)
  unsigned vms_killed = 0;     // ended by the host OOM killer
  bool exceeded = false;       // host memory went above the abort threshold
  double exceeded_at_s = 0;
  double simulated_s = 0;
  double host_min_gib = 0, host_avg_gib = 0, host_max_gib = 0;  // over [warmup, end]
  double host_peak_gib = 0;                                     // over the whole run
  std::vector<AccountSummary> cpu;
  TimeSeries series{{}};
  std::uint64_t events = 0;
  std::uint64_t touched_pages = 0;
  std::uint64_t guest_oom_kills = 0;
  std::uint64_t workload_cycles = 0;
  // Benchmark workloads (page_fault1/2): operations per second of each `workloads:` entry,
  // summed over its tasks and the VMs (0 for other workloads).
  std::vector<double> workload_ops_per_s;
  std::uint64_t simulator_bytes = 0;  // model memory at the end (page tables, metadata)
  // Each mechanism's statistics at the end: (mechanism, [(stat, value)]).
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, double>>>> mechanisms;
};

// Receives progress of long runs; the command line shows it, tests ignore it.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void update(double simulated_s, double total_s) = 0;
};

class Simulation {
 public:
  Simulation(const Scenario& scenario, unsigned vms);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // Runs to the scenario's duration, or until host memory exceeds `abort_above` bytes.
  RunResult run(ProgressSink* progress = nullptr, std::optional<Bytes> abort_above = std::nullopt);

  [[nodiscard]] HostMemory& host() { return *host_; }
  [[nodiscard]] EventQueue& queue() { return queue_; }

 private:
  struct Vm;
  void launch(unsigned index);
  // All of a VM's workloads have ended; in a `launch` experiment the next VM starts.
  void vm_done(const Vm& vm);
  void sample(TimePoint now);
  void check(bool full) const;
  void host_oom_kill();
  [[nodiscard]] std::uint64_t simulator_bytes() const;

  const Scenario& s_;
  unsigned vm_count_;
  unsigned completed_ = 0;
  EventQueue queue_;
  std::unique_ptr<HostMemory> host_;
  Accounts accounts_;
  CostAccount* vcpus_ = nullptr;
  CostAccount* host_faults_ = nullptr;
  std::vector<std::unique_ptr<Vm>> vms_;
  std::vector<std::unique_ptr<Mechanism>> mechanisms_;
  TimeSeries series_;
  TimeWeightedGauge host_gauge_;
  double host_peak_gib_ = 0;
  unsigned killed_ = 0;
  bool window_started_ = false;
};

}  // namespace memvirt
