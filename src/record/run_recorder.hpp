// What one run measured, recorded the same way by the simulator and the real lab: the host
// memory gauge over the statistics window, its peak, the time series, the CPU accounts and
// the stats tree. Writers format a RunResult; the recorder builds one.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cost.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"

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
  unsigned vms_refused = 0;    // not started: the host's policy did not admit them
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
  // Workloads that ended before their work was done: chosen by the guest's OOM killer, or out
  // of memory with nothing left to kill. A VM whose workload ended so still counts in
  // vms_completed; its run is no measure of speed (no slowdown is reported for it).
  std::uint64_t workloads_killed = 0;
  std::uint64_t workload_cycles = 0;
  double work_s = 0;  // the workloads' work_time, summed (WorkloadStats)
  // Benchmark workloads (page_fault1/2): operations per second of each `workloads:` entry,
  // summed over its tasks and the VMs (0 for other workloads).
  std::vector<double> workload_ops_per_s;
  std::uint64_t simulator_bytes = 0;  // model memory at the end (page tables, metadata)
  // When every VM had finished its workloads; nullopt when some had not by the end.
  std::optional<double> completion_s;
  std::uint64_t pswpin = 0, pswpout = 0;                // pages read from and written to swap disks
  std::uint64_t sectors_read = 0, sectors_written = 0;  // the guests' disks, 512-byte sectors
  std::uint64_t major_faults = 0, refaults = 0;
  double memory_stall_s = 0;    // the guests' PSI memory "some" totals, summed
  double vcpu_seconds = 0;      // CPU time the guests' vCPUs were busy
  double host_cpu_seconds = 0;  // the host's own work: faults, mechanisms, the I/O backend
  // Xen's tmem, when the host ran it: peaks of memory held and pages held (before dedup and
  // compression), and frontswap's pages (persistent pages) at the end and at their peak.
  struct Tmem {
    std::uint64_t pages_max = 0, apparent_pages_max = 0;
    std::uint64_t frontswap_pages_end = 0, frontswap_pages_max = 0;
  };
  std::optional<Tmem> tmem;
  // zswap, when the guests ran it: debugfs's stored_pages and pool_total_size (in pages) at
  // the end and at their peak, same_filled_pages at the end and written_back_pages, summed
  // over the guests (a peak is the sum of each guest's peak).
  struct Zswap {
    std::uint64_t stored_pages_end = 0, stored_pages_max = 0;
    std::uint64_t pool_pages_end = 0, pool_pages_max = 0;
    std::uint64_t same_filled_pages_end = 0, written_back_pages = 0;
  };
  std::optional<Zswap> zswap;
  // The components' statistics at the end, in the shape of the configuration: a component
  // configured at `reclaim[1]` has its stats at stats["reclaim"][1].
  nlohmann::json stats = nlohmann::json::object();
};

// The columns every run's timeseries.csv begins with, simulator and lab alike.
inline constexpr std::string_view kCommonColumns[] = {
    "time_s",           "host_used_gib",  "host_private_gib",    "host_shared_gib",  "vms_alive",
    "guest_in_use_gib", "guest_free_gib", "guest_committed_gib", "guest_touched_gib"};

// The guests' memory and I/O columns, summed over the live VMs, in the simulator's and the
// lab's time series alike: page cache (Cached, Dirty, Writeback), swap in use, the split LRU,
// MemAvailable, then counters since boot (major faults, refaults, the disks' 512-byte sectors)
// and the vCPUs' busy share since the previous sample.
inline constexpr std::string_view kGuestColumns[] = {
    "guest_cached_gib",      "guest_dirty_gib",         "guest_writeback_gib",
    "guest_swap_used_gib",   "guest_active_file_gib",   "guest_inactive_file_gib",
    "guest_active_anon_gib", "guest_inactive_anon_gib", "guest_available_gib",
    "guest_major_faults",    "guest_refaults",          "guest_sectors_read",
    "guest_sectors_written", "guest_vcpu_utilisation"};

// Where a component writes its statistics: a StatsVisitor onto one node of the stats tree. A
// counter written again at the same name adds up, so several VMs' counters visited into one
// node give their sum; a value written again replaces.
class StatsNode final : public StatsVisitor {
 public:
  explicit StatsNode(nlohmann::json& node) : node_(node) {}
  void counter(std::string_view name, const Counter& c) override;
  void value(std::string_view name, double v) override;
  // A child node ("kernel"), or an element of a list ("reclaim", 1), created as needed. An
  // element node is valid until its list grows.
  [[nodiscard]] StatsNode child(std::string_view name);
  [[nodiscard]] StatsNode element(std::string_view list, std::size_t index);
  void text(std::string_view name, std::string_view v);

 private:
  nlohmann::json& node_;
};

// The simulator's CPU accounts over `elapsed`, in creation order.
std::vector<AccountSummary> summarize(const Accounts& accounts, Duration elapsed);

class RunRecorder {
 public:
  // Statistics of host memory cover [warmup, stop]; the peak covers the whole run. The time
  // series starts with kCommonColumns, then `extra_columns`.
  RunRecorder(Duration warmup, const std::vector<std::string>& extra_columns);

  // Opens the statistics window when `now` has reached the warm-up: host memory is taken to
  // have been `gib` since the warm-up began. Does nothing before the warm-up or once open.
  void open_window(TimePoint now, double gib);
  // Host memory in use now (GiB); opens the window with this value when it is due.
  void observe_host(TimePoint now, double gib);
  // A column after those given at construction; only before the first row.
  void add_column(std::string name);
  // One row: kCommonColumns then the extra columns, in order.
  void add_row(std::vector<double> row);
  // Ends the window at `stop` and fills the result's host memory, series and stats fields.
  void finish(TimePoint stop, RunResult& out);
  [[nodiscard]] StatsNode stats() { return StatsNode(stats_); }
  [[nodiscard]] bool window_started() const { return window_started_; }

 private:
  Duration warmup_;
  TimeSeries series_;
  TimeWeightedGauge gauge_;
  double peak_gib_ = 0;
  double last_gib_ = 0;
  bool window_started_ = false;
  nlohmann::json stats_ = nlohmann::json::object();
};

}  // namespace memvirt
