// A guest with a disk (fixed latency) and a process, driven by hand: the page cache, swap and
// the front ends that hook into them.
#pragma once

#include <functional>
#include <memory>

#include "guest/kernel.hpp"
#include "guest/kernel_internal.hpp"
#include "test_util.hpp"

namespace memvirt::testing {

struct DiskGuest {
  explicit DiskGuest(Bytes memory, Bytes swap = Bytes{0}, bool workingset = true,
                     Duration latency = Duration::millis(5))
      : costs(unit_costs()),
        host(std::make_unique<FingerprintStore>()),
        vcpu("vcpu", 1),
        faults("faults", 1),
        disk(queue, latency) {
    GuestKernelConfig cfg;
    cfg.memory = memory;
    cfg.swap = swap;
    cfg.workingset = workingset;
    vm = host.add_vm(memory);
    kernel = std::make_unique<GuestKernel>(cfg, host, vm, costs, vcpu, faults);
    kernel->attach_disk(queue, disk, (64ULL << 30) / kSectorSize);
    pid = kernel->spawn("test");
  }
  // Calls `op` until it is done, running the clock while it waits for I/O. `op` gets the
  // pages done so far and returns the result of its next call.
  TouchResult run(const std::function<TouchResult(std::uint64_t)>& op, std::uint64_t pages) {
    std::uint64_t done = 0;
    TouchResult last;
    for (int spins = 0; done < pages && spins < 1'000'000; ++spins) {
      last = op(done);
      done += last.pages;
      if (last.status == TouchStatus::kBlocked) {
        ++waits;
        bool woke = false;
        kernel->when_done(last.wait, [&] { woke = true; });
        while (!woke && queue.step(TimePoint::max())) {
        }
        if (!woke) ADD_FAILURE() << "blocked process never woke";
        continue;
      }
      if (last.status != TouchStatus::kDone) break;
      if (last.pages == 0 && done < pages) continue;
    }
    last.pages = done;
    return last;
  }
  TouchResult read(FileId f, std::uint64_t first, std::uint64_t pages) {
    return run(
        [&](std::uint64_t done) { return kernel->read_file(pid, f, first + done, pages - done); },
        pages);
  }
  TouchResult write(FileId f, std::uint64_t first, std::uint64_t pages, const ContentFn& c) {
    return run(
        [&](std::uint64_t done) {
          return kernel->write_file(pid, f, first + done, pages - done, c);
        },
        pages);
  }
  void settle() {
    while (queue.step(queue.now() + Duration::seconds(60))) {
    }
  }
  [[nodiscard]] std::uint64_t resident(FileId f, std::uint64_t first, std::uint64_t pages) const {
    std::uint64_t n = 0;
    for (std::uint64_t p = first; p < first + pages; ++p) {
      if (kernel->slots().entry(kernel->file(f).mapping, p).kind() == SlotKind::kFrame) ++n;
    }
    return n;
  }
  CostProfile costs;
  HostMemory host;
  CostAccount vcpu;
  CostAccount faults;
  EventQueue queue;
  FixedLatencyDisk disk;
  VmId vm;
  std::unique_ptr<GuestKernel> kernel;
  std::uint32_t pid = 0;
  std::uint64_t waits = 0;  // times a call blocked for I/O
};

}  // namespace memvirt::testing
