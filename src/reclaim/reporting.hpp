// Free page reporting (v16 of the series, mainline since Linux 5.7: mm/page_reporting.c and
// virtio-balloon's reporting queue), with QEMU's host side.
//
// Guest: a free that leaves a block of at least `order` on a buddy list requests a report
// (IDLE -> REQUESTED) and schedules the work `delay` later. The work (ACTIVE) walks, for each
// zone above its low watermark plus capacity << order, the free lists from `order` up:
// it skips Reported blocks, isolates unreported ones into a scatterlist of `capacity`
// entries, and when the list is full rotates the free list so that the first unprocessed
// block is at the head, reports the batch, puts the blocks back and flags Reported those
// still free at the same order. Each list gets DIV_ROUND_UP(nr_free, capacity * 16) report
// calls per pass; when they are spent the device goes back to REQUESTED and runs again
// `delay` later. A Reported block loses the flag when it is allocated or merged.
//
// Host: each reported range is discarded with MADV_DONTNEED (the next guest touch faults in
// a zeroed page) or MADV_FREE (the frame stays until the host needs memory; a guest write
// before that keeps it with no fault).
//
// The model has one migratetype per zone (no MOVABLE/UNMOVABLE split), so each order has one
// list where Linux has one per migratetype.
#pragma once

#include <memory>
#include <vector>

#include "reclaim/discard.hpp"
#include "reclaim/mechanism.hpp"
#include "reclaim/per_vm.hpp"

namespace memvirt {

struct ReportingConfig {
  unsigned order = kPageblockOrder;              // page_reporting_order
  Duration delay = Duration::seconds(2);         // PAGE_REPORTING_DELAY
  unsigned capacity = 32;                        // PAGE_REPORTING_CAPACITY
  DiscardMode discard = DiscardMode::kDontNeed;  // QEMU: MADV_DONTNEED; RFC: MADV_FREE
};

struct ReportingStats {
  Counter requests;         // REQUESTED set from IDLE (work scheduled)
  Counter passes;           // runs of the work
  Counter report_calls;     // batches sent to the host
  Counter blocks_reported;  // scatterlist entries the host discarded
  Counter pages_reported;
  Counter pages_flagged;     // blocks flagged Reported after a report, in pages
  Counter budget_exhausted;  // lists left early because their budget was spent
  Counter isolate_failures;  // blocks not isolated because of the min watermark
  Counter zones_skipped;     // zones below the low watermark + capacity << order
  Counter blocks_walked;     // free-list entries visited
};

// The state of one VM's reporting device, exposed for tests.
enum class ReportingState : std::uint8_t { kIdle, kRequested, kActive };

class FreePageReporting final : public Mechanism {
 public:
  using Config = ReportingConfig;
  explicit FreePageReporting(ReportingConfig cfg);
  ~FreePageReporting() override;
  static ReportingConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "reporting"; }
  void start(const MechanismEnv& env) override;
  void attach(const VmHandle& vm) override;
  void detach(VmId vm) override;
  void visit_stats(StatsVisitor& v) const override;
  void visit_columns(StatsVisitor& v) const override;
  [[nodiscard]] const ReportingStats& stats() const { return stats_; }
  [[nodiscard]] ReportingState state(VmId vm) const;
  // One run of the reporting work for a VM (page_reporting_process); public for tests.
  void process(VmId vm);

 private:
  struct Device;
  void request(Device& d);
  void process_zone(Device& d, Zone& zone);
  // page_reporting_cycle() over one free list; false when the pass must stop for the zone.
  void cycle(Device& d, Zone& zone, unsigned order);
  void report_and_drain(Device& d);

  ReportingConfig cfg_;
  MechanismEnv env_;
  PerVm<Device> devices_;
  VirtioHost qemu_;
  ReportingStats stats_;
};

}  // namespace memvirt
