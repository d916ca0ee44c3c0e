// PageONE, seed 000's multithreaded page deduplication engine. Every merge_period its work
// threads hash the pages that stayed unchanged for `stable_periods` merge periods (seed 000:
// "pages were merged if not modified in 2 merge_periods") and merge equal ones through a hash
// index; merged pages are copy-on-write. Pages PPR knows to be free are skipped. It shares its
// daemon and work threads (and so their CPU accounts) with PPR.
//
// Unchanged-ness comes from the host's dirty tracking (a bit per page set on every guest
// write) and a 2-bit count of clean periods per page.
#pragma once

#include <unordered_map>
#include <vector>

#include "reclaim/mechanism.hpp"

namespace memvirt {

struct PageOneConfig {
  Duration merge_period = Duration::seconds(600);
  unsigned work_threads = 12;
  unsigned stable_periods = 2;
};

struct PageOneStats {
  Counter passes;
  Counter pages_hashed;
  Counter pages_merged;
  Counter pages_skipped_free;
};

class PageOne final : public Mechanism {
 public:
  using Config = PageOneConfig;
  explicit PageOne(PageOneConfig cfg) : cfg_(cfg) {}
  static PageOneConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "pageone"; }
  void start(const MechanismEnv& env) override;
  void attach(const VmHandle& vm) override;
  void detach(VmId vm) override;
  void visit_stats(StatsVisitor& v) const override;
  void visit_columns(StatsVisitor& v) const override;
  // One merge pass over every attached VM (the daemon's body; public for tests).
  void merge_pass();

 private:
  struct VmState {
    VmHandle vm;
    std::vector<std::uint64_t> clean;  // 2 bits per page: merge periods without a write
  };
  [[nodiscard]] bool free_by_peer(VmId vm, Gfn gfn) const;

  PageOneConfig cfg_;
  MechanismEnv env_;
  std::vector<VmState> vms_;
  std::unordered_map<std::uint64_t, std::uint64_t> merged_;  // content -> shared frame id
  std::unique_ptr<PeriodicDaemon> daemon_;
  CostAccount* daemon_account_ = nullptr;
  CostAccount* workers_ = nullptr;
  PageOneStats stats_;
};

}  // namespace memvirt
