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
#include "host/cpu_scheduler.hpp"
#include "host/disk.hpp"
#include "host/host_memory.hpp"
#include "policy/policy.hpp"
#include "reclaim/xen.hpp"
#include "record/run_recorder.hpp"
#include "scenario/scenario.hpp"
#include "workload/workload.hpp"

namespace memvirt {

class Balloon;
class Ksm;

// How the VMs of a run start: VM i at i x launch_interval, or each one launch_interval after
// the one before has finished its workloads.
enum class LaunchOrder : std::uint8_t { kStaggered, kEachAfterThePrevious };

// Receives progress of long runs; the command line shows it, tests ignore it.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void update(double simulated_s, double total_s) = 0;
};

class Simulation {
 public:
  Simulation(const Scenario& scenario, unsigned vms, LaunchOrder order = LaunchOrder::kStaggered);
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
  void check(CheckLevel level) const;
  void collect_stats(StatsNode root) const;
  void host_oom_kill();
  [[nodiscard]] std::uint64_t simulator_bytes() const;
  // Host memory in use: frames backing guests (KVM), or dom0, reservations and tmem (Xen).
  [[nodiscard]] std::uint64_t host_used_pages() const;
  // What a host-side controller sees now: host meminfo, KSM's files, the guests' balloons and
  // stats queues, and what their agents report.
  [[nodiscard]] HostObservation observe() const;
  // One tick of the scenario's policy: observe, decide, carry out.
  void run_policy();

  const Scenario& s_;
  unsigned vm_count_;
  LaunchOrder order_;
  unsigned completed_ = 0;
  EventQueue queue_;
  std::unique_ptr<HostMemory> host_;
  Accounts accounts_;
  CostAccount* vcpus_ = nullptr;
  CostAccount* host_faults_ = nullptr;
  std::vector<std::unique_ptr<Vm>> vms_;
  std::vector<std::unique_ptr<Mechanism>> mechanisms_;
  RunRecorder recorder_;
  unsigned killed_ = 0;
  unsigned refused_ = 0;  // launches the policy did not admit
  std::unique_ptr<Policy> policy_;
  std::optional<PeriodicDaemon> policy_loop_;
  Balloon* balloon_ = nullptr;
  Ksm* ksm_ = nullptr;
  struct PolicyStats {
    Counter ticks, balloon_requests, clamped_requests, ksm_changes;
  } policy_stats_;
  std::unique_ptr<CpuScheduler> cpus_;  // the host's CPUs, shared by the vCPUs
  std::unique_ptr<HostDisk> disk_;      // when the VMs have virtual disks
  std::unique_ptr<XenHost> xen_;        // when the host runs Xen
  CostAccount* io_backend_ = nullptr;
  std::optional<TimePoint> completion_;  // when the last VM finished its workloads
  TimePoint last_sample_{};
  double last_vcpu_busy_s_ = 0;
};

}  // namespace memvirt
