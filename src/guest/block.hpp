// The guest's virtual block device, as its kernel sees it: requests of 512-byte sectors that
// complete later. The simulation backs it with the host's disk model and I/O backend; tests
// back it with a fixed latency.
//
// Contract: submit() never calls `done` before it returns; every submitted request's `done`
// is called exactly once, at its completion time, unless the device is destroyed first.
#pragma once

#include <cstdint>
#include <functional>

#include "core/event_queue.hpp"
#include "core/types.hpp"
#include "host/disk.hpp"

namespace memvirt {

inline constexpr std::uint64_t kSectorsPerPage =
    kPageSize / kSectorSize;  // kSectorSize: host/disk.hpp

struct BlockRequest {
  bool write = false;
  std::uint64_t sector = 0;
  std::uint32_t sectors = 0;
  std::function<void(TimePoint)> done;
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual void submit(BlockRequest request) = 0;
};

// Every request takes `latency`, whatever else is in flight.
class FixedLatencyDisk final : public BlockDevice {
 public:
  FixedLatencyDisk(EventQueue& queue, Duration latency) : queue_(queue), latency_(latency) {}
  void submit(BlockRequest request) override {
    queue_.after(latency_, EventQueue::kHost,
                 [done = std::move(request.done)](TimePoint t) { done(t); });
  }

 private:
  EventQueue& queue_;
  Duration latency_;
};

}  // namespace memvirt
