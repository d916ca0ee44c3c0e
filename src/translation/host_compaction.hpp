// Host compaction as a process (seed 004: "while the OS compacts memory, Dual Direct runs as
// Guest Direct and VMM Direct as base virtualized; once the OS provides enough contiguous
// memory the VMM creates its segment").
//
// The host range that backs the VMM segment is contiguous only while no page of another
// allocation sits inside it. Other host allocations place movable pages there: some at the
// start (the host was fragmented when the VM started) and then in bursts at Poisson-distributed
// times. A compaction daemon like Linux's kcompactd wakes periodically; when it finds foreign
// pages in the range it migrates them out one after another, each at a fixed cost, and keeps
// going until the range is clean (bursts that arrive meanwhile join its work). The VMM segment
// exists only while the range is clean. The degraded share of time therefore follows from the
// fragmentation rate, the burst size, the migration cost and the daemon's wake interval.
#pragma once

#include <cstdint>
#include <vector>

#include "core/types.hpp"

namespace memvirt::translation {

struct HostCompactionConfig {
  // Share of the segment range's 4 KiB pages held by other movable allocations at the start.
  double initial_fragmentation = 0;
  double events_per_s = 0;                         // fragmentation bursts per second (Poisson)
  std::uint64_t pages_per_event = 512;             // 4 KiB pages each burst places inside the range
  double migrate_page_ns = 1861;                   // CPU time of migrating one 4 KiB page
  Duration wake_interval = Duration::millis(500);  // daemon's periodic check; 0: wakes at once
  // Virtual time the measured references span; 0: the workload's own run time (references x
  // base cycles per reference at the clock rate).
  Duration duration{0};
};

// [begin, end) in virtual nanoseconds since the start of the measured references.
struct DegradedInterval {
  double begin_ns = 0;
  double end_ns = 0;
};

struct HostCompactionStats {
  std::uint64_t fragmentation_events = 0;
  std::uint64_t pages_placed = 0;    // foreign pages put into the range, initial ones included
  double pages_migrated = 0;         // by the daemon (fractional at the horizon)
  std::uint64_t segment_builds = 0;  // times the range became clean and the segment was made
  double daemon_busy_ns = 0;         // the daemon's CPU time
  double degraded_ns = 0;            // time without a VMM segment
  double horizon_ns = 0;
  [[nodiscard]] double degraded_share() const {
    return horizon_ns > 0 ? degraded_ns / horizon_ns : 0;
  }
  [[nodiscard]] double daemon_cpu_share() const {
    return horizon_ns > 0 ? daemon_busy_ns / horizon_ns : 0;
  }
};

struct HostCompactionTimeline {
  std::vector<DegradedInterval> degraded;  // sorted, disjoint
  HostCompactionStats stats;
};

// Simulates the range of `segment_pages` 4 KiB pages over `horizon_ns` of virtual time. The
// random stream is (seed, "translation.host_compaction", stream): equal arguments give equal
// timelines, so every configuration of one workload sees the same host events.
HostCompactionTimeline simulate_host_compaction(const HostCompactionConfig& c,
                                                std::uint64_t segment_pages, double horizon_ns,
                                                std::uint64_t seed, std::uint64_t stream);

}  // namespace memvirt::translation
