// oVirt MOM (Memory Overcommitment Manager) with its shipped balloon and KSM rules
// (doc/balloon.rules, doc/ksm.rules, doc/mom-balloon+ksm.conf of oVirt/mom).
//
// Every monitor interval (5 s) MOM samples the host (mem_free = MemFree + Buffers + Cached)
// and each guest (balloon_cur, and mem_unused = the stats queue's MemFree); every policy
// interval (10 s) the rules run on the averages of the last 10 samples.
// Balloon rules: host_free_percent = avg(mem_free) / MemTotal. Below pressure_threshold
// (0.20) every guest shrinks by max_balloon_change_percent (5%) of its current size, but not
// below used + guest_free_percent x current, where used = avg(balloon_cur) - avg(mem_unused)
// and guest_free_percent = min_guest_free_percent (0.20) x host_free_percent / threshold, or
// host_free_percent - 0.05 when it is at or below pressure_critical (0.05). Otherwise a
// ballooned guest grows by 5%, at least to used + 0.20 x current, at most to its maximum.
// Changes of at most min_balloon_change_percent (0.25%) of the current size are skipped.
// KSM rules: threshold = 20% of MemTotal; KSM stops when threshold + shareable memory (the
// guests' sizes) fits the host and avg(mem_free) is above the threshold; else it runs with
// sleep_millisecs = 10 x 16 GiB / MemTotal and pages_to_scan raised by 300 when avg(mem_free)
// is below the threshold, lowered by 50 otherwise, within 64..1250.
#pragma once

#include <deque>
#include <map>

#include "policy/policy.hpp"

namespace memvirt {

struct MomConfig {
  Duration monitor_interval = Duration::seconds(5);  // host/guest-monitor-interval
  Duration policy_interval = Duration::seconds(10);  // policy-engine-interval
  unsigned history = 10;                             // sample-history-length
  bool balloon_rules = true;
  bool ksm_rules = true;
  double pressure_threshold = 0.20;
  double pressure_critical = 0.05;
  double min_guest_free_percent = 0.20;
  double max_balloon_change_percent = 0.05;
  double min_balloon_change_percent = 0.0025;
  KsmScanSteps ksm_steps;
  double ksm_sleep_ms_baseline = 10;
  double ksm_free_percent = 0.20;
};

class Mom final : public Policy {
 public:
  using Config = MomConfig;
  explicit Mom(MomConfig cfg) : cfg_(cfg) {}
  static MomConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "mom"; }
  [[nodiscard]] PolicyInputs needs() const override;
  [[nodiscard]] Duration sample_interval() const override { return cfg_.monitor_interval; }
  PolicyActions tick(const HostObservation& now) override;
  void visit_stats(StatsVisitor& v) const override;

 private:
  struct GuestHistory {
    std::deque<double> balloon_cur, mem_unused;  // bytes
  };
  void balloon_rules(const HostObservation& now, double host_free_percent, PolicyActions& out);
  void ksm_rules(const HostObservation& now, double avg_mem_free, PolicyActions& out) const;

  MomConfig cfg_;
  std::deque<double> host_mem_free_;
  std::map<std::uint32_t, GuestHistory> guests_;
  std::uint64_t ticks_ = 0;
  Counter policy_runs_;
};

}  // namespace memvirt
