#include "policy/controller.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace memvirt {
namespace {

double d(Bytes b) {
  return static_cast<double>(b.value());
}
Bytes pages_of(double bytes) {
  return Bytes::from_pages(static_cast<std::uint64_t>(std::max(0.0, bytes)) / kPageSize);
}

// Under deflate-on-oom MemTotal still counts the balloon's pages, which are neither free nor
// available: what of MemTotal lies beyond the guest's actual size is the balloon's.
double ballooned_in_total(const GuestMemoryStats& st, double actual) {
  return std::max(0.0, d(st.total) - actual);
}
double used_memory(const GuestMemoryStats& st, double actual) {
  return std::max(0.0, d(st.total) - d(st.available) - ballooned_in_total(st, actual));
}

}  // namespace

ControllerConfig Controller::config_from(Params& p) {
  ControllerConfig c;
  c.tick = p.duration("tick", c.tick, "decision period (1 s)");
  if (c.tick.ns() <= 0) p.fail("tick", "must be positive");
  c.stall_threshold = p.real("stall_threshold", c.stall_threshold,
                             "stall share of a tick that counts as pressure (0.01)", 0, 1);
  c.grow = p.real("grow", c.grow, "growth under pressure, of the guest's memory (0.10)", 0, 1);
  c.hold = p.duration("hold", c.hold, "how long the size at pressure bounds shrinking (60 s)");
  c.peak_window = p.duration("peak_window", c.peak_window,
                             "how long the largest memory used bounds shrinking (1 h; 0: off)");
  if (c.peak_window.ns() < 0) p.fail("peak_window", "must not be negative");
  c.settle = p.integer("settle", c.settle, "calm ticks before shrinking (5)", 0, 1 << 20);
  c.reserve_min = p.bytes("reserve_min", c.reserve_min, "least memory kept available (64 MiB)");
  c.reserve_fraction = p.real("reserve_fraction", c.reserve_fraction,
                              "memory kept available, of the guest's memory (0.05)", 0, 1);
  c.probe = p.real("probe", c.probe, "shrink per tick, of the guest's size (0.01)", 0, 1);
  c.probe_short = p.real("probe_short", c.probe_short,
                         "shrink per tick while the host is short of memory (0.04)", 0, 1);
  c.host_low = p.real("host_low", c.host_low, "host free share that counts as short (0.10)", 0, 1);
  c.stats_stale =
      p.duration("stats_stale", c.stats_stale, "stats older than this stop shrinking (30 s)");
  c.ksm = p.boolean("ksm", c.ksm, "tune KSM when the host has it");
  c.ksm_free = p.real("ksm_free", c.ksm_free, "host free share below which KSM runs (0.20)", 0, 1);
  return c;
}

PolicyActions Controller::tick(const HostObservation& now) {
  PolicyActions out;
  std::map<std::uint32_t, Guest> alive;
  for (const GuestObservation& g : now.guests) {
    Guest s = guests_[g.key];
    tick_guest(now, g, s, out);
    alive.emplace(g.key, s);
  }
  guests_ = std::move(alive);
  if (cfg_.ksm && now.ksm) tick_ksm(now, out);
  return out;
}

void Controller::tick_guest(const HostObservation& now, const GuestObservation& g, Guest& s,
                            PolicyActions& out) {
  const double tick_ns = static_cast<double>(cfg_.tick.ns());
  double stall_share = 0;
  if (g.memory_stall) {
    if (s.last_stall) {
      stall_share = static_cast<double>((*g.memory_stall - *s.last_stall).ns()) / tick_ns;
    }
    s.last_stall = g.memory_stall;
  }
  std::uint64_t swapped = 0;
  bool short_of_reserve = false;
  const double memory = d(g.memory);
  const double reserve = std::max(d(cfg_.reserve_min), cfg_.reserve_fraction * memory);
  if (g.stats) {
    const std::uint64_t swap = g.stats->swap_in_bytes + g.stats->swap_out_bytes;
    if (s.seen_stats && swap >= s.last_swap) swapped = swap - s.last_swap;
    s.last_swap = swap;
    s.seen_stats = true;
    // Less available than half the reserve, in stats newer than the last growth: the
    // guest's demand is running ahead of its size.
    short_of_reserve =
        d(g.stats->available) < reserve / 2 && now.since_start - g.stats->age >= s.grown_at;
  }
  const double actual = d(g.actual);
  if (g.stats && cfg_.peak_window.ns() > 0) {
    const double used_now = used_memory(*g.stats, actual);
    if (used_now >= s.peak_used || now.since_start - s.peak_at >= cfg_.peak_window) {
      s.peak_used = used_now;
      s.peak_at = now.since_start;
    }
  }
  // Pages the balloon gave back on its own: the guest deflated it on OOM.
  const bool deflated =
      s.last_actual.value() > 0 && g.actual > s.last_actual && g.actual > g.target;
  s.last_actual = g.actual;
  if (stall_share > cfg_.stall_threshold || swapped > 0 || short_of_reserve || deflated) {
    s.calm = 0;
    s.floor = std::max(s.floor, g.actual);
    s.floor_until = now.since_start + cfg_.hold;
    // What it swapped since the last tick is what it lacked: give at least that back.
    const double step = std::max(cfg_.grow * memory, static_cast<double>(swapped) + reserve);
    const double size = std::min(memory, std::max(actual, d(g.target)) + step);
    const Bytes target = pages_of(size);
    if (target > g.target) {
      grows_.add();
      s.grown_at = now.since_start;
      out.balloons.push_back(
          {g.key, target,
           fmt::format("pressure (stall {:.1f}%, swapped {} KiB{}{}): grow to {:.0f} MiB",
                       100 * stall_share, swapped / 1024,
                       short_of_reserve ? ", below half the reserve" : "",
                       deflated ? ", deflated on OOM" : "", target.mib())});
    }
    return;
  }
  ++s.calm;
  if (s.calm <= cfg_.settle || !g.stats || g.stats->age > cfg_.stats_stale) return;
  if (now.since_start >= s.floor_until) s.floor = Bytes{0};
  const double ballooned = ballooned_in_total(*g.stats, actual);
  const double used = used_memory(*g.stats, actual);
  const bool host_short = d(now.free) < cfg_.host_low * d(now.total);
  // A host short of memory needs it now more than a guest may need its peak again.
  const double peak = host_short ? 0.0 : s.peak_used + reserve;
  const double want = std::max({used + reserve, peak, d(s.floor), d(g.min)});
  const double current = std::min(actual, d(g.target));
  if (want >= current) return;
  // Free memory goes back at once: nothing in the guest is using it. Below that, into the
  // page cache, it probes a step per tick.
  const double in_use = std::max(0.0, d(g.stats->total) - d(g.stats->free) - ballooned);
  const double quick = std::max(in_use + reserve, want);
  const double step = (host_short ? cfg_.probe_short : cfg_.probe) * current;
  const bool free_back = quick < current - step;
  const Bytes target = pages_of(free_back ? quick : std::max(want, current - step));
  if (target >= g.target) return;
  shrinks_.add();
  out.balloons.push_back(
      {g.key, target,
       free_back ? fmt::format("calm {} s, {:.0f} MiB free: shrink to {:.0f} MiB", s.calm,
                               d(g.stats->free) / (1 << 20), target.mib())
                 : fmt::format("calm {} s, used {:.0f} MiB + reserve {:.0f} MiB{}: shrink to "
                               "{:.0f} MiB",
                               s.calm, used / (1 << 20), reserve / (1 << 20),
                               host_short ? ", host short" : "", target.mib())});
}

void Controller::tick_ksm(const HostObservation& now, PolicyActions& out) {
  const bool short_of_memory = d(now.free) < cfg_.ksm_free * d(now.total);
  // MOM's stepping while short; once it has decayed to its minimum, KSM stops.
  const KsmScanSteps steps;
  if (short_of_memory) {
    npages_ = steps.next(npages_, true);
  } else if (npages_ > 0) {
    npages_ = npages_ > steps.min ? steps.next(npages_, false) : 0;
  }
  const bool run = npages_ > 0;
  if (run == now.ksm->run &&
      (!run || static_cast<std::uint64_t>(npages_) == now.ksm->pages_to_scan))
    return;
  out.ksm = KsmTuning{run, run ? static_cast<std::uint64_t>(npages_) : now.ksm->pages_to_scan,
                      now.ksm->sleep};
  out.ksm_reason = fmt::format("host free {:.0f} MiB {} {:.0f}%: {}", now.free.mib(),
                               short_of_memory ? "<" : ">=", 100 * cfg_.ksm_free,
                               run ? fmt::format("{} pages per wake-up", npages_) : "stop");
}

void Controller::visit_stats(StatsVisitor& v) const {
  v.counter("grows", grows_);
  v.counter("shrinks", shrinks_);
}

}  // namespace memvirt
