#include "translation/host_compaction.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/rng.hpp"

namespace memvirt::translation {

HostCompactionTimeline simulate_host_compaction(const HostCompactionConfig& c,
                                                std::uint64_t segment_pages, double horizon_ns,
                                                std::uint64_t seed, std::uint64_t stream) {
  constexpr double kNever = std::numeric_limits<double>::infinity();
  HostCompactionTimeline out;
  HostCompactionStats& st = out.stats;
  st.horizon_ns = horizon_ns;
  Rng rng(seed, "translation.host_compaction", stream);
  const double per_page = c.migrate_page_ns;
  const auto wake = static_cast<double>(c.wake_interval.ns());
  const double mean_gap = c.events_per_s > 0 ? 1e9 / c.events_per_s : kNever;

  const auto initial = static_cast<std::uint64_t>(
      std::llround(c.initial_fragmentation * static_cast<double>(segment_pages)));
  st.pages_placed = initial;
  double work = static_cast<double>(initial) * per_page;  // migration time still needed
  bool busy = false;
  double degraded_since = work > 0 ? 0 : -1;  // < 0: the range is clean, the segment exists
  double t = 0;
  double next_arrival = c.events_per_s > 0 ? rng.exponential(mean_gap) : kNever;

  auto close_degraded = [&](double at) {
    if (degraded_since < 0) return;
    if (at > degraded_since) out.degraded.push_back({degraded_since, at});
    st.degraded_ns += at - degraded_since;
    degraded_since = -1;
  };
  auto run_daemon_until = [&](double at) {
    if (!busy) return;
    const double dt = at - t;
    work -= dt;
    st.daemon_busy_ns += dt;
    st.pages_migrated += dt / per_page;
  };

  for (;;) {
    const double done = busy ? t + work : kNever;
    // An idle daemon with work waits for its next periodic check (kcompactd sleeps between
    // them); with no interval it starts at once.
    double wake_at = kNever;
    if (!busy && work > 0) wake_at = wake > 0 ? std::ceil(t / wake) * wake : t;
    const double next = std::min({next_arrival, done, wake_at});
    if (next >= horizon_ns) {
      run_daemon_until(horizon_ns);
      t = horizon_ns;
      close_degraded(horizon_ns);
      break;
    }
    run_daemon_until(next);
    t = next;
    if (next == done) {
      // The range is clean again: the VMM makes its segment.
      busy = false;
      work = 0;
      ++st.segment_builds;
      close_degraded(t);
    } else if (next == wake_at) {
      busy = true;
    } else {
      ++st.fragmentation_events;
      st.pages_placed += c.pages_per_event;
      work += static_cast<double>(c.pages_per_event) * per_page;
      if (degraded_since < 0) degraded_since = t;  // the segment is torn down
      next_arrival = t + rng.exponential(mean_gap);
    }
  }
  return out;
}

}  // namespace memvirt::translation
