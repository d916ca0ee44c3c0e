// virtio-balloon: QEMU's device and Linux's driver (drivers/virtio/virtio_balloon.c).
//
// The host sets a target balloon size (config num_pages); the driver's work item moves
// `actual` towards it in steps of at most 256 pages (VIRTIO_BALLOON_ARRAY_PFNS_MAX): to
// inflate it allocates pages from the guest without waking the OOM killer (__GFP_NORETRY)
// and sends their PFNs on the inflate queue, and the host discards each page
// (MADV_DONTNEED); to deflate it sends PFNs on the deflate queue and frees the pages back to
// the guest, which faults them in again on use. When an allocation fails the driver sleeps
// 200 ms and tries again. With DEFLATE_ON_OOM the driver's OOM notifier gives back 256
// pages before the OOM killer would run. The stats queue answers the host's polls with the
// standard tags.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "reclaim/discard.hpp"
#include "reclaim/mechanism.hpp"
#include "reclaim/per_vm.hpp"

namespace memvirt {

// The virtio-balloon stats tags (include/uapi/linux/virtio_balloon.h).
enum class BalloonStatTag : std::uint16_t {
  kSwapIn = 0,
  kSwapOut = 1,
  kMajorFaults = 2,
  kMinorFaults = 3,
  kMemFree = 4,
  kMemTotal = 5,
  kAvailable = 6,
  kCaches = 7,
  kHugetlbAllocations = 8,
  kHugetlbFailures = 9,
};
inline constexpr unsigned kBalloonStatTags = 10;

struct BalloonStatsReport {
  TimePoint at;
  std::array<std::uint64_t, kBalloonStatTags> value{};  // bytes for memory tags, counts else
  [[nodiscard]] std::uint64_t get(BalloonStatTag t) const {
    return value[static_cast<unsigned>(t)];
  }
};

struct BalloonTarget {
  Duration at;  // from the VM's launch
  Bytes size;   // memory taken from the guest
};

struct BalloonConfig {
  bool deflate_on_oom = false;  // VIRTIO_BALLOON_F_DEFLATE_ON_OOM (QEMU: deflate-on-oom=off)
  Duration stats_interval{};    // QEMU guest-stats-polling-interval; 0: no polling
  std::vector<BalloonTarget> targets;
};

struct BalloonStats {
  Counter inflate_requests;  // arrays sent on the inflate queue
  Counter deflate_requests;
  Counter pages_inflated;
  Counter pages_deflated;
  Counter oom_deflations;  // OOM notifications answered
  Counter alloc_failures;  // "Out of puff!"
  Counter stats_requests;
};

class Balloon final : public Mechanism {
 public:
  using Config = BalloonConfig;
  static constexpr std::uint32_t kArrayPfnsMax = 256;  // VIRTIO_BALLOON_ARRAY_PFNS_MAX
  static constexpr std::uint32_t kOomPages = 256;      // VIRTIO_BALLOON_OOM_NR_PAGES
  static constexpr Duration kRetryDelay = Duration::millis(200);

  explicit Balloon(BalloonConfig cfg);
  ~Balloon() override;
  static BalloonConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "balloon"; }
  void start(const MechanismEnv& env) override;
  void attach(const VmHandle& vm) override;
  void detach(VmId vm) override;
  void visit_stats(StatsVisitor& v) const override;
  void visit_columns(StatsVisitor& v) const override;

  // The host sets the balloon size (num_pages) of a VM; the driver follows.
  void set_target(VmId vm, std::uint64_t pages);
  [[nodiscard]] std::uint64_t target_pages(VmId vm) const;
  [[nodiscard]] std::uint64_t actual_pages(VmId vm) const;
  // The last stats the guest sent (none before the first poll).
  [[nodiscard]] const BalloonStatsReport* last_stats(VmId vm) const;
  [[nodiscard]] const BalloonStats& stats() const { return stats_; }

 private:
  struct Device;
  void kick(Device& d);
  void update_balloon_size(VmId vm);
  // One fill_balloon() or leak_balloon() step; returns its latency.
  Duration fill(Device& d, std::uint64_t pages);
  Duration leak(Device& d, std::uint64_t pages);
  void poll_stats(VmId vm);

  BalloonConfig cfg_;
  MechanismEnv env_;
  PerVm<Device> devices_;
  VirtioHost qemu_;
  BalloonStats stats_;
};

}  // namespace memvirt
