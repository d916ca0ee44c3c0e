// Workloads that produce address streams by running real algorithms on real data: every load
// and store of the algorithm's big arrays is emitted as the guest virtual address it would have
// in a process whose heap is the workload's primary region (the seed's "primary region", the
// range a direct segment maps). Arrays are packed into the heap in allocation order, 4 KiB
// aligned, as large mallocs are by mmap.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "translation/address.hpp"

namespace memvirt::translation {

struct Region {
  std::string name;
  Gva base;
  std::uint64_t bytes = 0;
};

// Collects emitted addresses into chunks handed to `flush`; stops accepting at `budget`.
class RefSink {
 public:
  using Flush = std::function<void(std::span<const Gva>)>;
  RefSink(std::uint64_t budget, Flush flush, std::size_t chunk = 1U << 16)
      : budget_(budget), flush_(std::move(flush)), buffer_(chunk) {}
  void emit(std::uint64_t va) {
    buffer_[used_++] = Gva{va};
    if (used_ == buffer_.size()) drain();
  }
  // Workloads poll this between steps; references past the budget are dropped.
  [[nodiscard]] bool full() const { return emitted_ + used_ >= budget_; }
  // Hands over what is buffered; returns the total references delivered.
  std::uint64_t finish() {
    drain();
    return emitted_;
  }

 private:
  void drain() {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(used_, budget_ - emitted_));
    if (n > 0) flush_(std::span<const Gva>(buffer_.data(), n));
    emitted_ += n;
    used_ = 0;
  }
  std::uint64_t budget_;
  Flush flush_;
  std::vector<Gva> buffer_;
  std::size_t used_ = 0;
  std::uint64_t emitted_ = 0;
};

// Lays arrays out in a heap region starting at a 1 GiB aligned base.
class HeapLayout {
 public:
  static constexpr std::uint64_t kHeapBase = 1ULL << 40;  // 1 TiB: clear of code and stack
  // Returns the gVA of a new array of `bytes`.
  std::uint64_t place(std::uint64_t bytes) {
    const std::uint64_t at = kHeapBase + used_;
    used_ += (bytes + 4095) & ~std::uint64_t{4095};
    return at;
  }
  [[nodiscard]] Region region() const { return Region{"heap", Gva{kHeapBase}, used_}; }

 private:
  std::uint64_t used_ = 0;
};

class Workload {
 public:
  virtual ~Workload() = default;
  // The ranges the workload touches; the first is the primary region.
  [[nodiscard]] virtual const std::vector<Region>& regions() const = 0;
  // Runs the algorithm, emitting every data reference, until sink.full() (or, for a finite
  // trace without looping, its end).
  virtual void run(RefSink& sink) = 0;
  // A short description of the data set, for the report.
  [[nodiscard]] virtual std::string describe() const = 0;
};

// Builds the workload (its data set) when called; parameters are read before, so a bad key is
// reported before anything runs.
using WorkloadFactory = std::function<std::unique_ptr<Workload>()>;

// Reads `type` and that workload's parameters; seed drives the data sets.
WorkloadFactory make_workload(Params p, std::uint64_t seed);

WorkloadFactory make_gups(Params& p, std::uint64_t seed);
WorkloadFactory make_graph500(Params& p, std::uint64_t seed);
WorkloadFactory make_memcached(Params& p, std::uint64_t seed);
WorkloadFactory make_npb_cg(Params& p, std::uint64_t seed);
WorkloadFactory make_trace_replay(Params& p, std::uint64_t seed);

}  // namespace memvirt::translation
