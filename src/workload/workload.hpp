// Workloads: programs that run inside a guest and drive its memory. Each schedules its own
// events on the simulation's queue; registry by the scenario's `type:`.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/event_queue.hpp"
#include "core/params.hpp"
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

using WorkloadFactory = std::function<std::unique_ptr<Workload>()>;

// Reads one workload entry (its `type` and parameters) and returns a factory that makes
// independent instances of it, one per VM. Throws InputError on bad parameters.
WorkloadFactory make_workload_factory(Params p);

// Size distributions for allocation amounts.
class SizeDistribution {
 public:
  // `dist`: constant (value) | uniform (min, max) | truncated_exponential (mean, max).
  static SizeDistribution from_params(Params p);
  [[nodiscard]] Bytes draw(Rng& rng) const;
  [[nodiscard]] Bytes mean() const;
  [[nodiscard]] Bytes max() const { return max_; }

 private:
  enum class Kind { kConstant, kUniform, kTruncatedExponential } kind_ = Kind::kConstant;
  Bytes min_{}, max_{};
  double rate_ = 0;  // 1/bytes, truncated exponential
};

// Unique page contents for a program: every write is a content no other page has (a
// counter per program through a bijective mix, so two draws never collide).
class UniqueContent {
 public:
  UniqueContent(std::uint64_t seed, std::uint64_t vm, std::uint64_t stream)
      : base_(splitmix64(seed ^ splitmix64(vm * 0x100000001B3ULL + stream))) {}
  Fingerprint next() { return make_unique_fingerprint(splitmix64(base_ + counter_++)); }

 private:
  std::uint64_t base_;
  std::uint64_t counter_ = 0;
};

}  // namespace memvirt
