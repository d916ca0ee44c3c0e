// How much memory the simulator will take for one run, known before it starts, so that a
// sweep running points side by side starts a point only when the machine has room for it.
//
// The simulator's memory is its per-page state: for every guest page a guest has touched, a
// nested page table entry (8 bytes) and the guest's page metadata and lists (docs/
// performance.md, "Where the bytes go"); untouched memory costs next to nothing, as both are
// held in chunks allocated on first use. The estimate takes every page of every guest the run
// may hold at once as touched, at the bytes per page measured on the largest runs:
// - 13.1 bytes per guest page for guests without a disk: seed 000 at full scale, 516 VMs
//   (BM_MemoryPerTouchedPage; measured peak RSS 5.4 GiB against this estimate's 6.7 GiB);
// - 24 bytes for guests with a disk, whose page cache and swap keep shadow entries and LRU
//   state (BM_MemoryPerResidentPage: 23.6 bytes per resident page);
// plus a fixed 64 MiB for the process's own (profiles, the event queue, code).
// The VMs a run may hold at once: `fixed` its vms, `launch` its max_vms, `density` twice its
// first count (the search doubles from the first count until a count does not fit, and the
// trials that do not fit stop once host memory passes the budget: in every density scenario
// of scenarios/ the largest trial is that double), `carry` its max_vms (its doubling may reach
// it, and every trial's unconstrained run holds all of its guests).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "scenario/scenario.hpp"
#include "translation/experiment.hpp"

namespace memvirt::sweep {

struct MemoryEstimate {
  // nullopt: no estimate for this experiment type; the run is started only when no other
  // runs, whatever the budget.
  std::optional<std::uint64_t> bytes;
  std::string basis;  // how it was reached, for the plan's listing
};

MemoryEstimate estimate_memory(const Scenario& s);

// Translation experiments run real algorithms on real data (translation/workloads/), whose size
// is known only once a workload is built: seed004-footprint's GUPS over a 4 GiB table peaks at
// 4.3 GiB of RSS. No estimate: a translation run runs alone.
MemoryEstimate estimate_memory(const translation::TranslationScenario& s);

}  // namespace memvirt::sweep
