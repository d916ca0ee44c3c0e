// Workloads: programs that run inside a guest and drive its memory. Each schedules its own
// events on the simulation's queue; the scenario names them by `type:`, from the registry.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/event_queue.hpp"
#include "core/params.hpp"
#include "core/registry.hpp"
#include "core/rng.hpp"
#include "guest/kernel.hpp"

namespace memvirt {

struct WorkloadStats {
  Counter cycles;  // allocate/touch/free rounds completed
  Counter pages_touched;
  Counter pages_freed;
  Counter killed;       // times the OOM killer ended the program
  Counter operations;   // benchmark operations (page_fault1/2: pages faulted in)
  Duration measured{};  // time over which `operations` were counted
  // Time spent on work whose start the clock paces (periodic_alloc: touching each round's
  // allocation), the measure of speed for workloads that neither end nor count operations.
  Duration work_time{};
  void visit(StatsVisitor& v) const {
    v.counter("cycles", cycles);
    v.counter("pages_touched", pages_touched);
    v.counter("pages_freed", pages_freed);
    v.counter("killed", killed);
    v.counter("operations", operations);
  }
};

// What a workload instance runs against; owned by the VM.
struct WorkloadEnv {
  EventQueue* queue = nullptr;
  GuestKernel* kernel = nullptr;
  const bool* vm_alive = nullptr;  // events after the VM is gone do nothing
  std::uint64_t seed = 0;          // scenario seed
  std::uint64_t vm_index = 0;
  std::uint64_t workload_index = 0;
  std::function<void()> finished;  // called once when a finite workload has ended for good
};

class Workload {
 public:
  virtual ~Workload() = default;
  // Called once when the VM has booted; the workload schedules its first event.
  virtual void start(const WorkloadEnv& env) = 0;
  [[nodiscard]] virtual const WorkloadStats& stats() const = 0;
};

using WorkloadSpec = Spec<Workload>;
using WorkloadRegistry = Registry<Workload>;

// Every workload, by its `type:` name (workload/registry.cpp: one line each).
WorkloadRegistry make_workload_registry();

// `touch_chunk`, which every workload entry takes: pages touched per event, the granularity
// of virtual time. Returns the pages.
std::uint64_t read_touch_chunk(Params& p);

// Unique page contents for a program: every write is a content no other page has (a
// counter per program through a bijective mix, so two draws never collide).
class UniqueContent {
 public:
  UniqueContent(std::uint64_t seed, std::uint64_t vm, std::uint64_t stream,
                ContentClass cls = ContentClass::kOpaque)
      : base_(splitmix64(seed ^ splitmix64(vm * 0x100000001B3ULL + stream))), class_(cls) {}
  Fingerprint next() { return make_unique_fingerprint(splitmix64(base_ + counter_++), class_); }
  // Draw i is make_unique_fingerprint(splitmix64(base() + i), class).
  [[nodiscard]] std::uint64_t base() const { return base_; }

 private:
  std::uint64_t base_;
  ContentClass class_;
  std::uint64_t counter_ = 0;
};

}  // namespace memvirt
