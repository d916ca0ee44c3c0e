#include "policy/mom.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace memvirt {
namespace {

void push(std::deque<double>& d, double v, unsigned limit) {
  d.push_back(v);
  while (d.size() > limit) d.pop_front();
}

double average(const std::deque<double>& d) {
  return std::accumulate(d.begin(), d.end(), 0.0) / static_cast<double>(d.size());
}

Bytes bytes_of(double v) {
  return Bytes{static_cast<std::uint64_t>(std::max(0.0, v))};
}

}  // namespace

MomConfig Mom::config_from(Params& p) {
  MomConfig c;
  c.monitor_interval = p.duration("monitor_interval", c.monitor_interval,
                                  "host and guest sampling (MOM: host-monitor-interval 5)");
  if (c.monitor_interval.ns() <= 0) p.fail("monitor_interval", "must be positive");
  c.policy_interval = p.duration("policy_interval", c.policy_interval,
                                 "rules run this often (MOM: policy-engine-interval 10)");
  if (c.policy_interval < c.monitor_interval) {
    p.fail("policy_interval", "must be at least monitor_interval");
  }
  c.history = static_cast<unsigned>(p.integer(
      "history", c.history, "samples averaged (MOM: sample-history-length 10)", 1, 10000));
  c.balloon_rules = p.boolean("balloon", c.balloon_rules, "run the balloon rules");
  c.ksm_rules = p.boolean("ksm", c.ksm_rules, "run the KSM rules");
  if (!c.balloon_rules && !c.ksm_rules) p.fail("ksm", "one of balloon and ksm must be on");
  c.pressure_threshold = p.real("pressure_threshold", c.pressure_threshold,
                                "host free share below which guests shrink (0.20)", 0, 1);
  c.pressure_critical = p.real("pressure_critical", c.pressure_critical,
                               "host free share below which guests are forced to swap (0.05)", 0,
                               c.pressure_threshold);
  c.min_guest_free_percent = p.real("min_guest_free_percent", c.min_guest_free_percent,
                                    "free share an unconstrained guest keeps (0.20)", 0, 1);
  c.max_balloon_change_percent =
      p.real("max_balloon_change_percent", c.max_balloon_change_percent,
             "largest change per run, of the guest's current size (0.05)", 0, 1);
  c.min_balloon_change_percent = p.real("min_balloon_change_percent", c.min_balloon_change_percent,
                                        "smaller changes are skipped (0.0025)", 0, 1);
  KsmScanSteps& k = c.ksm_steps;
  k.boost = p.integer("ksm_pages_boost", k.boost, "pages_to_scan increase (300)", 0, 1 << 30);
  k.decay = p.integer("ksm_pages_decay", k.decay, "pages_to_scan change when not short (-50)",
                      -(1 << 30), 0);
  k.min = p.integer("ksm_npages_min", k.min, "pages_to_scan at least (64)", 1, 1 << 30);
  k.max = p.integer("ksm_npages_max", k.max, "pages_to_scan at most (1250)", k.min, 1 << 30);
  c.ksm_sleep_ms_baseline = p.real("ksm_sleep_ms_baseline", c.ksm_sleep_ms_baseline,
                                   "sleep_millisecs on a 16 GiB host (10)", 0, 1e6);
  c.ksm_free_percent = p.real("ksm_free_percent", c.ksm_free_percent,
                              "free share below which KSM runs (0.20)", 0, 1);
  return c;
}

PolicyInputs Mom::needs() const {
  PolicyInputs in;
  in.balloon_stats = cfg_.balloon_rules;
  in.balloon = cfg_.balloon_rules;
  in.ksm = cfg_.ksm_rules;
  return in;
}

PolicyActions Mom::tick(const HostObservation& now) {
  push(host_mem_free_, static_cast<double>((now.free + now.cached).value()), cfg_.history);
  std::map<std::uint32_t, GuestHistory> alive;
  for (const GuestObservation& g : now.guests) {
    GuestHistory h = std::move(guests_[g.key]);
    // A guest whose stats are not in yet is not ready: MOM leaves it out.
    if (g.stats) {
      push(h.balloon_cur, static_cast<double>(g.actual.value()), cfg_.history);
      push(h.mem_unused, static_cast<double>(g.stats->free.value()), cfg_.history);
    }
    alive.emplace(g.key, std::move(h));
  }
  guests_ = std::move(alive);
  PolicyActions out;
  const auto every = static_cast<std::uint64_t>(
      std::max<std::int64_t>(1, cfg_.policy_interval.ns() / cfg_.monitor_interval.ns()));
  if (++ticks_ % every != 0) return out;
  policy_runs_.add();
  const double avg_free = average(host_mem_free_);
  const double total = static_cast<double>(now.total.value());
  if (cfg_.balloon_rules && total > 0) balloon_rules(now, avg_free / total, out);
  if (cfg_.ksm_rules) ksm_rules(now, avg_free, out);
  return out;
}

void Mom::balloon_rules(const HostObservation& now, double host_free_percent, PolicyActions& out) {
  const bool shrink = host_free_percent < cfg_.pressure_threshold;
  double guest_free_percent = cfg_.min_guest_free_percent;
  if (shrink) {
    guest_free_percent =
        host_free_percent <= cfg_.pressure_critical
            ? -0.05 + host_free_percent
            : cfg_.min_guest_free_percent * (host_free_percent / cfg_.pressure_threshold);
  }
  for (const GuestObservation& g : now.guests) {
    const GuestHistory& h = guests_.at(g.key);
    if (h.balloon_cur.empty()) continue;
    const double cur = static_cast<double>(g.actual.value());
    const double used = average(h.balloon_cur) - average(h.mem_unused);
    const double floor =
        std::max(static_cast<double>(g.min.value()), used + guest_free_percent * cur);
    double size = 0;
    if (shrink) {
      size = std::max(cur * (1 - cfg_.max_balloon_change_percent), floor);
      if (size > cur) continue;
    } else {
      const double max = static_cast<double>(g.max.value());
      if (cur >= max) continue;
      size = std::min(std::max(cur * (1 + cfg_.max_balloon_change_percent), floor), max);
    }
    if (std::abs(size - cur) <= cfg_.min_balloon_change_percent * cur) continue;
    out.balloons.push_back(
        {g.key, bytes_of(size),
         fmt::format("host free {:.1f}% {} {:.0f}%: {} to {:.0f} MiB (used {:.0f} MiB)",
                     100 * host_free_percent, shrink ? "<" : ">=", 100 * cfg_.pressure_threshold,
                     shrink ? "shrink" : "grow", size / (1 << 20), used / (1 << 20))});
  }
}

void Mom::ksm_rules(const HostObservation& now, double avg_mem_free, PolicyActions& out) const {
  if (!now.ksm) return;
  const double total = static_cast<double>(now.total.value());
  const double threshold = total * cfg_.ksm_free_percent;
  double shareable = 0;  // ksm_shareable: the QEMU processes' virtual sizes
  for (const GuestObservation& g : now.guests) shareable += static_cast<double>(g.memory.value());
  KsmTuning t;
  if (threshold + shareable < total && avg_mem_free > threshold) {
    t = KsmTuning{false, now.ksm->pages_to_scan, now.ksm->sleep};
    out.ksm_reason = fmt::format("free {:.0f} MiB > threshold {:.0f} MiB and guests fit: stop",
                                 avg_mem_free / (1 << 20), threshold / (1 << 20));
  } else {
    const double total_kb = total / 1024;
    const auto sleep_ms =
        static_cast<std::int64_t>(cfg_.ksm_sleep_ms_baseline * 16777216 / total_kb);
    const bool short_of_memory = avg_mem_free < threshold;
    const std::int64_t npages =
        cfg_.ksm_steps.next(static_cast<std::int64_t>(now.ksm->pages_to_scan), short_of_memory);
    t = KsmTuning{true, static_cast<std::uint64_t>(npages), Duration::millis(sleep_ms)};
    out.ksm_reason =
        fmt::format("free {:.0f} MiB {} threshold {:.0f} MiB: run, {} pages per {} ms",
                    avg_mem_free / (1 << 20), short_of_memory ? "<" : ">=", threshold / (1 << 20),
                    npages, sleep_ms);
  }
  out.ksm = t;
}

void Mom::visit_stats(StatsVisitor& v) const {
  v.counter("policy_runs", policy_runs_);
}

}  // namespace memvirt
