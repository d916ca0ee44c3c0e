// Host mechanisms that reclaim or deduplicate guest memory, or hand it back through virtio
// (PPR, KSM, PageONE, free page reporting, free page hinting, virtio-balloon). One interface
// for the family; each implementation in its own file; the scenario's `reclaim:` list names
// them by `impl:`, from the registry (make_mechanism_registry()).
//
// Contract: start() is called once at time 0, before any VM exists; attach() when a VM's
// kernel exists and before it boots (so guest hooks see every allocation); detach() before
// the host drops a VM's memory. A mechanism charges its CPU to accounts it gets from
// MechanismEnv::accounts by name, so mechanisms that share threads (PPR and PageONE) share
// accounts.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/cost.hpp"
#include "core/event_queue.hpp"
#include "core/params.hpp"
#include "core/registry.hpp"
#include "core/stats.hpp"
#include "guest/kernel.hpp"
#include "host/host_memory.hpp"

namespace memvirt {

class Mechanism;

class XenHost;

struct MechanismEnv {
  EventQueue* queue = nullptr;
  HostMemory* host = nullptr;
  XenHost* xen = nullptr;  // the Xen hypervisor, when the host runs Xen
  Accounts* accounts = nullptr;
  const CostProfile* costs = nullptr;
  std::uint64_t seed = 0;
  std::vector<Mechanism*> peers;  // every mechanism of the simulation, this one included
};

struct VmHandle {
  VmId id;
  unsigned index = 0;  // launch order
  GuestKernel* kernel = nullptr;
  CostAccount* vcpu = nullptr;  // where guest-side work is charged
};

class Mechanism {
 public:
  virtual ~Mechanism() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  virtual void start(const MechanismEnv& env) = 0;
  virtual void attach(const VmHandle& vm) = 0;
  virtual void detach(VmId vm) = 0;
  // True when the mechanism knows the guest holds (vm, gfn) free (PPR's marks), so other
  // mechanisms can skip it.
  [[nodiscard]] virtual bool known_free(VmId /*vm*/, Gfn /*gfn*/) const { return false; }
  // Statistics at the end of the run, written at the mechanism's place in the stats tree.
  virtual void visit_stats(StatsVisitor& v) const = 0;
  // The statistics sampled into the time series, one column each ("reclaim[i].<name>"): the
  // same names in the same order at every call, and cheap to read (no walks of big trees).
  virtual void visit_columns(StatsVisitor& /*v*/) const {}
  // The mechanism's own invariants, cheap or `full` (the run's graded checks); throws
  // std::logic_error on a violation.
  virtual void check(bool /*full*/) const {}
};

using MechanismSpec = Spec<Mechanism>;
using MechanismRegistry = Registry<Mechanism>;

// Every mechanism, by its `impl:` name (reclaim/registry.cpp: one line each).
MechanismRegistry make_mechanism_registry();

}  // namespace memvirt
