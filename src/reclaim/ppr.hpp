// PPR, the per-page recycler of seed 000. Guest side: the page-free hook marks each freed page
// in a bitmap shared with the host; the page-allocation hook clears the mark. Host side: a
// daemon, every reclaim_period, replaces each still-marked page by the zero page and gives
// its frame back.
//
// The marks are a bitmap rather than seed 000's pointer-indicator pair. Both give the same
// guarantee when the host recycles with "unmap, then test-and-clear the mark": the guest
// clears the mark before it uses a page, so a mark still set after the host has unmapped
// the page proves the page is free, and any later guest access faults and is served a fresh
// page. The bitmap costs one bit per page and never writes into the freed page; the
// pointer-indicator pair writes the page's first bytes on every free. Recycled pages have
// their marks cleared, so a scan finds only pages freed since the last one.
#pragma once

#include <vector>

#include "reclaim/mechanism.hpp"
#include "reclaim/per_vm.hpp"

namespace memvirt {

struct PprConfig {
  Duration reclaim_period = Duration::seconds(10);
  unsigned work_threads = 0;  // 0: the daemon recycles itself
};

struct PprStats {
  Counter pages_marked;
  Counter pages_unmarked;
  Counter pages_recycled;
  Counter passes;
  Counter words_scanned;
};

class Ppr final : public Mechanism {
 public:
  using Config = PprConfig;
  explicit Ppr(PprConfig cfg);
  ~Ppr() override;
  static PprConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "ppr"; }
  void start(const MechanismEnv& env) override;
  void attach(const VmHandle& vm) override;
  void detach(VmId vm) override;
  [[nodiscard]] bool known_free(VmId vm, Gfn gfn) const override;
  void visit_stats(StatsVisitor& v) const override;
  void visit_columns(StatsVisitor& v) const override;
  [[nodiscard]] const PprStats& stats() const { return stats_; }
  // One recycling pass over every attached VM (the daemon's body; public for tests).
  void recycle_pass();

 private:
  struct VmState;

  PprConfig cfg_;
  MechanismEnv env_;
  PerVm<VmState> vms_;
  std::unique_ptr<PeriodicDaemon> daemon_;
  CostAccount* daemon_account_ = nullptr;
  CostAccount* worker_account_ = nullptr;
  PprStats stats_;
};

}  // namespace memvirt
