// Guest free page hinting, RFC v8 (seed 001; virt/kvm/page_hinting.c of the series).
//
// arch_free_page() records each freed block {pfn, order} in a per-CPU array of 1000 entries
// (MAX_FGPT_ENTRIES); frees that find the array full are not recorded. When the array fills,
// the per-CPU lists are drained and the array is rescanned: an entry whose page is no longer
// a free block head is replaced by the free block that now contains it (or dropped if that
// block is already recorded), and the array is packed. Only when the array is still full, of
// buddy blocks, is the per-CPU hinting thread woken. The thread walks each entry's pages,
// isolates every free block it finds from the buddy allocator into a second array, reports
// that array to the host through virtio-balloon (the host discards each range) and returns
// the blocks to the buddy allocator; then the array starts empty.
//
// The fixed array is the known weakness the author states: the thread only runs once 1000
// distinct free blocks are recorded, so memory freed in large merging blocks is captured
// late or never (entries left in a part-filled array are never hinted).
//
// The model runs the woken thread at once: with voluntary preemption it runs at the freeing
// task's next cond_resched(), which comes within one page-table page (512 pages) of frees.
// The guest's frees are attributed to vCPU 0, where the model's programs run.
#pragma once

#include <memory>
#include <vector>

#include "reclaim/discard.hpp"
#include "reclaim/mechanism.hpp"
#include "reclaim/per_vm.hpp"

namespace memvirt {

struct HintingConfig {
  unsigned entries = 1000;  // MAX_FGPT_ENTRIES
};

struct HintingStats {
  Counter frees_recorded;   // arch_free_page calls that found room in the array
  Counter frees_missed;     // calls that found the array full
  Counter scans;            // rescans of a full array
  Counter entries_dropped;  // entries dropped by a rescan (already recorded block)
  Counter thread_runs;
  Counter blocks_isolated;
  Counter isolate_failures;
  Counter pages_hinted;
};

class FreePageHinting final : public Mechanism {
 public:
  using Config = HintingConfig;
  explicit FreePageHinting(HintingConfig cfg);
  ~FreePageHinting() override;
  static HintingConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "hinting"; }
  void start(const MechanismEnv& env) override;
  void attach(const VmHandle& vm) override;
  void detach(VmId vm) override;
  void visit_stats(StatsVisitor& v) const override;
  void visit_columns(StatsVisitor& v) const override;
  [[nodiscard]] const HintingStats& stats() const { return stats_; }
  // Entries now recorded in a VM's array (for tests).
  [[nodiscard]] std::size_t recorded(VmId vm) const;

 private:
  struct Vm;

  HintingConfig cfg_;
  MechanismEnv env_;
  PerVm<Vm> vms_;
  VirtioHost qemu_;
  HintingStats stats_;
};

}  // namespace memvirt
