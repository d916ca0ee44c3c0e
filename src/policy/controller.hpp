// memvirt's own controller: each guest is given what it uses plus a reserve, taken back
// slowly while the guest shows no pressure and given back at once when it does.
//
// Every tick (1 s), per guest, from the balloon stats queue and, when the guest reports it,
// its pressure stall time:
//  - Pressure is stall time above stall_threshold of the tick (1%), any swap-in or swap-out
//    since the last tick, or less MemAvailable than half the reserve (below) in stats sent
//    after the last growth. Under pressure the guest grows at once by grow (10%) of its memory, or
//    by what it swapped since the last tick plus the reserve when that is more, and the size it had
//    is remembered as a floor for `hold` (60 s): probing stops short of where the guest last hurt,
//    which bounds the oscillation.
//  - After `settle` (5) calm ticks it shrinks toward want = used + reserve, where used =
//    actual - MemAvailable and reserve = max(reserve_min (64 MiB), reserve_fraction (5%) of
//    memory). Free memory (MemFree beyond the reserve) goes back in one request: nothing in
//    the guest uses it. Below that, into the page cache, by probe (1%) of its size per tick,
//    or probe_short (4%) while the host's free memory is below host_low (10%) of the host.
//    Never below the floor, want or its minimum.
//  - The largest `used` seen is kept as a peak for peak_window (1 h) from when it was last
//    reached, and want is at least peak + reserve: a demand that came once comes again (a
//    periodic job, a burst), and a guest shrunk below it meets it through deflate-on-oom,
//    256 pages per OOM notification. A larger used starts the window again; once it ends,
//    the peak is what the guest uses then. While the host is short (below host_low) the
//    peak does not bound shrinking. 0 turns it off.
//  - Stats older than three polls stop shrinking (the guest may be stuck); growth still acts.
//  - The balloon must be one the guest deflates on OOM (deflate-on-oom): a burst faster than
//    a tick then takes pages back from the balloon instead of a process's life. A guest whose
//    balloon gave pages back that the controller did not ask for (actual above its last
//    size while the target did not rise) is under pressure too.
// KSM, when the host has it: it runs only while host free memory is below ksm_free (20%) of
// the host, pages_to_scan stepping up by 300 per tick while short and down by 50 when not
// (64..1250), as MOM does, so its CPU is spent only when memory is short.
#pragma once

#include <map>

#include "policy/policy.hpp"

namespace memvirt {

struct ControllerConfig {
  Duration tick = Duration::seconds(1);
  double stall_threshold = 0.01;
  double grow = 0.10;
  Duration hold = Duration::seconds(60);
  Duration peak_window = Duration::seconds(3600);
  std::int64_t settle = 5;
  Bytes reserve_min{64ULL << 20};
  double reserve_fraction = 0.05;
  double probe = 0.01;
  double probe_short = 0.04;
  double host_low = 0.10;
  Duration stats_stale = Duration::seconds(30);
  bool ksm = true;
  double ksm_free = 0.20;
};

class Controller final : public Policy {
 public:
  using Config = ControllerConfig;
  explicit Controller(ControllerConfig cfg) : cfg_(cfg) {}
  static ControllerConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "memvirt"; }
  [[nodiscard]] PolicyInputs needs() const override {
    PolicyInputs in;
    in.balloon = true;
    in.balloon_stats = true;
    in.deflate_on_oom = true;
    return in;
  }
  [[nodiscard]] Duration sample_interval() const override { return cfg_.tick; }
  PolicyActions tick(const HostObservation& now) override;
  void visit_stats(StatsVisitor& v) const override;

 private:
  struct Guest {
    std::optional<Duration> last_stall;
    std::uint64_t last_swap = 0;  // swap-ins and swap-outs, bytes
    Bytes last_actual;
    Duration grown_at{-1};
    bool seen_stats = false;
    std::int64_t calm = 0;
    Bytes floor;
    Duration floor_until;
    double peak_used = 0;  // bytes
    Duration peak_at;
  };
  void tick_guest(const HostObservation& now, const GuestObservation& g, Guest& s,
                  PolicyActions& out);
  void tick_ksm(const HostObservation& now, PolicyActions& out);

  ControllerConfig cfg_;
  std::map<std::uint32_t, Guest> guests_;
  std::int64_t npages_ = 0;  // 0: KSM stopped
  Counter grows_, shrinks_;
};

}  // namespace memvirt
