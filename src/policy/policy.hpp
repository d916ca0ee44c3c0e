// Host memory policies: periodic controllers that see only what a real controller sees and
// act only through the mechanisms. One interface for the family, one implementation per
// file, the scenario's `policy:` entry names one by `impl:` (make_policy_registry()).
//
// A policy is a pure decision procedure over observations: the simulator (scenario/) and the
// lab and `memvirt control` (control/qmp_host.hpp, over QMP and sysfs) build the same
// HostObservation from what they can read and carry out the same PolicyActions, so one
// policy object runs in all three without knowing which.
//
// Contract: tick() is called every sample_interval() of the host's clock, first at one
// interval after the start, with what the host sees at that moment; it returns what to do
// now (often nothing). Observations carry only the inputs the host could read; a policy
// declares the optional ones it needs (needs()) and the host refuses it before starting when
// it cannot provide them, so tick() may rely on them. Actions are requests: the host clamps
// every balloon request into the guest's bounds (clamp_actions) before carrying it out.
// Policies never print; every action carries its reason, which the host logs or counts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "core/registry.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"

namespace memvirt {

// What the virtio-balloon stats queue last reported (QEMU's guest-stats; libvirt's
// dommemstat), in bytes for memory and counts for events.
struct GuestMemoryStats {
  Duration age;  // since the guest sent them
  Bytes total;   // MemTotal (memory the guest has, the balloon taken out)
  Bytes free;    // MemFree
  Bytes available;
  Bytes caches;  // NR_FILE_PAGES
  std::uint64_t swap_in_bytes = 0, swap_out_bytes = 0;
  std::uint64_t major_faults = 0, minor_faults = 0;
};

// One guest as the host sees it.
struct GuestObservation {
  std::uint32_t key = 0;  // stable for the guest's life; actions name the guest by it
  std::string name;
  Bytes memory;  // what it booted with: its memory with an empty balloon
  Bytes actual;  // what it has now (memory - balloon), as query-balloon reports
  Bytes target;  // what was last requested (memory when never)
  Bytes min;     // the operator's bounds for balloon targets
  Bytes max;
  Bytes resident;  // the host memory backing it (QEMU's RSS)
  std::optional<GuestMemoryStats> stats;
  // Inputs a guest agent gives (hv_balloon's pressure reports, /proc/pressure/memory).
  std::optional<Bytes> committed;        // Committed_AS
  std::optional<Duration> memory_stall;  // PSI memory "some" total
};

struct KsmObservation {
  bool run = false;
  std::uint64_t pages_to_scan = 0;
  Duration sleep;
  std::uint64_t pages_shared = 0, pages_sharing = 0, full_scans = 0;
};

struct HostObservation {
  Duration since_start;
  Bytes total;   // MemTotal
  Bytes free;    // MemFree
  Bytes cached;  // Buffers + Cached
  std::optional<KsmObservation> ksm;
  std::optional<Duration> memory_stall;  // the host's PSI memory "some" total
  std::vector<GuestObservation> guests;

  [[nodiscard]] const GuestObservation* guest(std::uint32_t key) const;
};

struct KsmTuning {
  bool run = false;
  std::uint64_t pages_to_scan = 0;
  Duration sleep;
};

// pages_to_scan as MOM's ksm.rules and ksmtuned step it: up by `boost` while memory is short,
// by `decay` (not positive) otherwise, within [min, max].
struct KsmScanSteps {
  std::int64_t boost = 300;  // KSM_NPAGES_BOOST
  std::int64_t decay = -50;  // KSM_NPAGES_DECAY
  std::int64_t min = 64;     // KSM_NPAGES_MIN
  std::int64_t max = 1250;   // KSM_NPAGES_MAX
  [[nodiscard]] std::int64_t next(std::int64_t npages, bool short_of_memory) const {
    const std::int64_t n = npages + (short_of_memory ? boost : decay);
    return n < min ? min : (n > max ? max : n);
  }
};

struct PolicyActions {
  struct BalloonRequest {
    std::uint32_t guest = 0;  // GuestObservation::key
    Bytes target;             // the memory the guest is to have (QMP `balloon` value)
    std::string reason;
  };
  std::vector<BalloonRequest> balloons;
  std::optional<KsmTuning> ksm;
  std::string ksm_reason;

  [[nodiscard]] bool empty() const { return balloons.empty() && !ksm; }
};

// Optional inputs a policy can need.
struct PolicyInputs {
  bool balloon_stats = false;  // the stats queue (GuestObservation::stats)
  bool ksm = false;            // KSM's counters and control (HostObservation::ksm)
  bool committed = false;      // GuestObservation::committed
  bool guest_stall = false;    // GuestObservation::memory_stall
  bool balloon = false;        // acts through the balloon
  // A balloon device with VIRTIO_BALLOON_F_DEFLATE_ON_OOM (QEMU deflate-on-oom=on): the
  // guest takes pages back from the balloon before its OOM killer would end a process.
  bool deflate_on_oom = false;
};

class Policy {
 public:
  virtual ~Policy() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  [[nodiscard]] virtual PolicyInputs needs() const = 0;
  [[nodiscard]] virtual Duration sample_interval() const = 0;
  virtual PolicyActions tick(const HostObservation& now) = 0;
  // Whether a new guest of `memory` may start on the host as observed (partitioning
  // refuses overcommit); others admit every guest.
  [[nodiscard]] virtual bool admits(const HostObservation& /*now*/, Bytes /*memory*/) const {
    return true;
  }
  virtual void visit_stats(StatsVisitor& /*v*/) const {}
};

// Every balloon request inside its guest's [min, max] and whole pages; requests for guests
// that are gone are dropped. Returns the requests it changed or dropped.
unsigned clamp_actions(const HostObservation& now, PolicyActions& actions);

using PolicySpec = Spec<Policy>;
using PolicyRegistry = Registry<Policy>;

// Every policy, by its `impl:` name (policy/registry.cpp: one line each).
PolicyRegistry make_policy_registry();

}  // namespace memvirt
