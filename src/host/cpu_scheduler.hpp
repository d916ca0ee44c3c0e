// The host's physical CPUs shared by its VMs, as a fair-share scheduler with equal weights
// (Linux CFS without CPU cgroups: every vCPU thread one entity of equal weight) gives them in
// the fluid limit: processor sharing, in two levels.
//
// Contract:
// - The host has P CPUs. A group (a VM, or the host's own threads: QEMU I/O threads, dom0)
//   has V CPUs (its vCPUs). A task is an amount of CPU work run by one thread of the group.
// - With k_g runnable tasks, group g keeps min(k_g, V_g) of its CPUs busy. With demand
//   D = sum over groups of min(k_g, V_g), each busy vCPU gets min(1, P / D) of a host CPU,
//   so group g runs at min(k_g, V_g) * min(1, P / D) CPUs, shared equally by its k_g tasks:
//   each task progresses at rate min(1, V_g / k_g) * min(1, P / D) <= 1.
// - Rates change only when a task arrives (run), completes or is cancelled. At each change
//   the work every running task has done is brought up to date and the one next-completion
//   event (EventQueue::kHost) is armed; a generation number makes superseded events do
//   nothing. An armed event earlier than the next completion is kept rather than replaced:
//   it fires, finds nothing due, changes nothing and re-arms.
// - Arithmetic is integer: time in nanoseconds, work in picoseconds with 32 fractional bits,
//   rates exact ratios of small integers. A task's work done is brought up to date only when
//   the rates change, rounded up to 2^-32 ps each time. Its completion fires at the first
//   nanosecond at which that work reaches its own: at the exact fluid solution rounded up to
//   the nanosecond, later by at most 1 ns for each rate change before it (whose own time was
//   rounded), and earlier only if the exact time lies within the rounding (2^-32 ps of work
//   per rate change) after a whole nanosecond. The task may receive up to the rest of that
//   nanosecond's share beyond its work; that CPU time is counted as consumed.
// - Every task completes no sooner than `work` after it was started (rate <= 1).
// - Accounting: each group's consumed CPU time is the integral of its CPUs in use; busy is
//   the integral of min(D, P). Sum over groups of consumed() equals busy() up to one
//   picosecond per group (each is rounded down separately).
// - `done` is called from the completion event with its time, after the task is removed and
//   the rates recomputed; it may call run() and cancel(). The scheduler owns each `done`
//   until it is called or the task is cancelled.
// - The queue must outlive the scheduler, and the scheduler must not be destroyed while an
//   event it armed can still fire (destroy the queue first, or drain it).
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/cost.hpp"
#include "core/event_queue.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"

namespace memvirt {

struct CpuGroupTag {};
// A VM's vCPUs, or a set of host threads, as one scheduling group.
using GroupId = StrongInt<CpuGroupTag, std::uint32_t>;
struct CpuTaskTag {};
using TaskId = StrongInt<CpuTaskTag, std::uint64_t>;

struct CpuSchedulerStats {
  Counter tasks_started;
  Counter tasks_completed;
  Counter tasks_cancelled;
  Counter rate_changes;  // runs, cancels and completion events (one each) that changed rates
};

class CpuScheduler {
 public:
  // Throws std::invalid_argument when host_cpus is 0. `queue` must outlive the scheduler.
  CpuScheduler(EventQueue& queue, unsigned host_cpus);
  CpuScheduler(const CpuScheduler&) = delete;
  CpuScheduler& operator=(const CpuScheduler&) = delete;

  // A new group of `cpus` CPUs (>= 1, else std::invalid_argument), with no task.
  GroupId add_group(unsigned cpus);

  // Starts a task of `work` CPU time in `group` now; `done` (may be empty) is called when it
  // completes. Returns its id (ids are never reused). A task of zero work completes at now,
  // from an event. Throws std::invalid_argument for an unknown group.
  TaskId run(GroupId group, CpuTime work, std::function<void(TimePoint)> done);
  // Stops a running task now (its process was killed or blocked); `done` is not called.
  // Returns the work it had done, at most its work; zero (and does nothing) for a task that
  // is not running.
  CpuTime cancel(TaskId task);

  [[nodiscard]] bool running(TaskId task) const { return tasks_.count(task.value()) > 0; }
  // Work done so far by a running task (at most its work); zero for one that is not running.
  [[nodiscard]] CpuTime progress(TaskId task) const;
  // Runnable tasks of the group.
  [[nodiscard]] unsigned runnable(GroupId group) const;
  // Current rate of each task of the group (CPUs per task), 0 when it has none.
  [[nodiscard]] double task_rate(GroupId group) const;
  // CPUs the group uses now: min(k, V) * min(1, P / D).
  [[nodiscard]] double group_cpus(GroupId group) const;

  // CPU time the group consumed from its creation to now.
  [[nodiscard]] CpuTime consumed(GroupId group) const;
  // CPU time all groups consumed since construction, to now: the integral of min(D, P).
  [[nodiscard]] CpuTime busy() const;
  // busy() / (P * time since construction); 0 before any time has passed.
  [[nodiscard]] double utilisation() const;

  [[nodiscard]] unsigned host_cpus() const { return host_cpus_; }
  [[nodiscard]] std::size_t groups() const { return groups_.size(); }
  [[nodiscard]] const CpuSchedulerStats& stats() const { return stats_; }
  // The counters, busy_cpu_s and utilisation.
  void visit(StatsVisitor& v) const;
  // One group's cpu_s.
  void visit_group(GroupId group, StatsVisitor& v) const;

 private:
  // Picoseconds with 32 fractional bits.
  __extension__ using Fixed = unsigned __int128;
  static constexpr unsigned kFractionBits = 32;

  struct Group {
    unsigned cpus = 1;
    Fixed service = 0;   // work done by each of its tasks since the group was made
    Fixed consumed = 0;  // CPU time the group consumed
    // Running tasks by the service at which they finish, then id.
    std::set<std::pair<Fixed, std::uint64_t>> finishing;
  };
  struct Task {
    std::uint32_t group;
    Fixed start;   // the group's service when the task started
    Fixed finish;  // start + work
    std::function<void(TimePoint)> done;
  };

  // Rates: a task of group g progresses at (min(k, V) * min(D, P)) / (D * k) ps per ps.
  [[nodiscard]] std::uint64_t alloc_numerator(const Group& g) const;
  [[nodiscard]] Fixed service_gain(const Group& g, std::int64_t ns) const;
  [[nodiscard]] Fixed consumed_gain(const Group& g, std::int64_t ns) const;
  [[nodiscard]] Fixed group_service_now(const Group& g) const;
  // The least ns with service_gain(g, ns) >= left (capped at the longest step).
  [[nodiscard]] std::int64_t ns_to_gain(const Group& g, Fixed left) const;
  // The group's index; throws std::invalid_argument for an unknown group.
  [[nodiscard]] std::uint32_t index_of(GroupId group) const;
  void advance();
  void remove_task(std::uint64_t id, const Task& t);
  void rearm();
  void on_event(std::uint64_t generation);

  EventQueue& queue_;
  unsigned host_cpus_;
  std::vector<Group> groups_;
  std::unordered_map<std::uint64_t, Task> tasks_;  // looked up by id, never iterated
  std::uint64_t demand_ = 0;                       // D
  TimePoint created_;
  TimePoint last_update_;
  std::uint64_t busy_ps_ = 0;  // exact: min(D, P) * elapsed ps
  std::uint64_t next_task_ = 1;
  std::uint64_t generation_ = 0;
  bool armed_ = false;  // an event of the current generation is pending
  TimePoint armed_at_;
  CpuSchedulerStats stats_;
};

}  // namespace memvirt
