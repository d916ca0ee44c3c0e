// One physical disk of the host, shared by the VMs whose virtual disks sit on it.
//
// Contract:
// - One FIFO queue: requests are served one at a time, in the order submit() was called,
//   whatever VM sent them (no elevator, no NCQ reordering, no merging).
// - A request's service time is its positioning time plus its transfer time:
//     seek                       unless sequential_no_seek and the request starts at the
//                                sector right after the last sector of the request served
//                                before it on this disk (the head is already there);
//     sectors * 512 / bandwidth  rounded up to the nanosecond.
//   The first request after construction always pays the seek.
// - A request starts when the previous one completes (or on submit, when the disk is idle);
//   its queue wait is start - submit. At start + service an event (EventQueue::kHost) fires
//   its `done` with the completion time, after the next request, if any, has started, so a
//   `done` that submits again queues behind the requests already waiting.
// - `sector` is a physical sector of this disk: the caller places each VM's virtual disk at
//   its own offset. Sector sizes are 512 bytes.
// - The disk owns each request's `done` until it is called; nothing else is retained.
//   Statistics count a request when it completes (busy time and sectors) and its queue wait
//   when it starts.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "core/event_queue.hpp"
#include "core/params.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"
#include "host/host_memory.hpp"

namespace memvirt {

inline constexpr std::uint32_t kSectorSize = 512;

struct DiskConfig {
  // Positioning time paid by a request that is not sequential: average seek plus half a
  // rotation. Seagate's data sheets for its 7200 rpm Barracuda desktop disks give an average
  // seek of 8.5 ms (Barracuda 7200.7, sold with ATA/IDE and SATA interfaces) and an average
  // latency of 4.16 ms (half a revolution at 7200 rpm: 60 s / 7200 / 2 = 4.1667 ms).
  // 8.5 ms + 4.1667 ms = 12.6667 ms.
  Duration seek{12'666'667};
  // Sustained transfer rate in bytes per second. Seagate's Barracuda 7200.11 data sheet
  // gives a maximum sustained data rate of 105 MB/s (1 TB models; 120 MB/s for 1.5 TB), at
  // the outer diameter; inner zones are slower. One rate for the whole disk: 100 MB/s.
  Bytes bandwidth{100'000'000};
  // A request that starts right after the previous request's last sector pays no seek.
  bool sequential_no_seek = true;
};

struct DiskRequest {
  VmId vm;
  bool write = false;
  std::uint64_t sector = 0;             // first physical sector
  std::uint32_t sectors = 0;            // 512-byte sectors; at least 1
  std::function<void(TimePoint)> done;  // called with the completion time; may be empty
};

struct DiskStats {
  Counter requests;  // completed
  Counter sectors_read;
  Counter sectors_written;
  Counter seeks;          // completed requests that paid the seek
  Duration busy{};        // sum of the service times of completed requests
  Duration queue_wait{};  // sum of (start - submit) of the requests started
  void visit(StatsVisitor& v) const {
    v.counter("requests", requests);
    v.counter("sectors_read", sectors_read);
    v.counter("sectors_written", sectors_written);
    v.counter("seeks", seeks);
    v.value("busy_s", busy.seconds());
    v.value("queue_wait_s", queue_wait.seconds());
  }
};

// The sectors one VM moved through the disk (completed requests).
struct DiskVmStats {
  Counter sectors_read;
  Counter sectors_written;
  void visit(StatsVisitor& v) const {
    v.counter("sectors_read", sectors_read);
    v.counter("sectors_written", sectors_written);
  }
};

class HostDisk {
 public:
  using Config = DiskConfig;
  // Reads `seek` (a duration, >= 0), `bandwidth` (bytes per second written as a size:
  // "100MB" is 100 MB/s; > 0) and `sequential_no_seek`. Throws InputError naming the field.
  static DiskConfig config_from(Params& p);

  // `queue` must outlive the disk. Events the disk scheduled that fire after it is destroyed
  // are not allowed: destroy the queue first or drain it.
  HostDisk(EventQueue& queue, DiskConfig cfg);
  HostDisk(const HostDisk&) = delete;
  HostDisk& operator=(const HostDisk&) = delete;

  // Queues `r` and returns its id (1, 2, ... in submission order). Throws
  // std::invalid_argument when r.sectors is 0.
  std::uint64_t submit(DiskRequest r);

  // Requests submitted and not yet completed, the one in service included.
  [[nodiscard]] std::size_t queue_depth() const { return waiting_.size() + (active_ ? 1U : 0U); }
  [[nodiscard]] bool busy() const { return active_.has_value(); }
  // The service time `r` would have if it started now (seek decided against the last
  // request started).
  [[nodiscard]] Duration service_time(const DiskRequest& r) const;

  [[nodiscard]] const DiskConfig& config() const { return cfg_; }
  [[nodiscard]] const DiskStats& stats() const { return stats_; }
  [[nodiscard]] std::uint64_t sectors_read(VmId vm) const;
  [[nodiscard]] std::uint64_t sectors_written(VmId vm) const;
  void visit(StatsVisitor& v) const { stats_.visit(v); }
  // One VM's counters (zero for a VM that sent nothing).
  void visit_vm(VmId vm, StatsVisitor& v) const;

 private:
  struct Pending {
    std::uint64_t id;
    DiskRequest request;
    TimePoint submitted;
  };
  struct Active {
    std::uint64_t id;
    DiskRequest request;
    Duration service;
    bool seeked;
  };
  [[nodiscard]] bool sequential(const DiskRequest& r) const;
  void start_next();
  void complete(std::uint64_t id);
  DiskVmStats& vm_stats(VmId vm);

  EventQueue& queue_;
  DiskConfig cfg_;
  std::deque<Pending> waiting_;
  std::optional<Active> active_;
  std::optional<std::uint64_t> head_;  // the sector after the last request started
  std::uint64_t next_id_ = 1;
  DiskStats stats_;
  std::vector<DiskVmStats> per_vm_;  // by VmId value
};

}  // namespace memvirt
