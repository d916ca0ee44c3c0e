#include "policy/senpai.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace memvirt {

SenpaiConfig Senpai::config_from(Params& p) {
  SenpaiConfig c;
  c.tick = p.duration("tick", c.tick, "time between ticks (senpai sleeps 1 s)");
  if (c.tick.ns() <= 0) p.fail("tick", "must be positive");
  c.interval = p.integer("interval", c.interval, "ticks between probes (--interval 6)", 1, 1 << 20);
  c.pressure = p.duration("pressure", c.pressure,
                          "stall time per interval it aims for (--pressure 10000 us)");
  if (c.pressure.ns() <= 0) p.fail("pressure", "must be positive");
  c.max_probe =
      p.real("max_probe", c.max_probe, "largest shrink per probe (--max-probe 0.01)", 0, 1);
  c.max_backoff = p.real("max_backoff", c.max_backoff,
                         "largest growth per back-off (--max-backoff 1.0)", 0, 100);
  c.coeff_probe =
      p.real("coeff_probe", c.coeff_probe, "probe steepness (--coeff-probe 10)", 1e-9, 1e9);
  c.coeff_backoff = p.real("coeff_backoff", c.coeff_backoff,
                           "back-off steepness (--coeff-backoff 20)", 1e-9, 1e9);
  c.min_size = p.bytes("min_size", c.min_size, "smallest limit (--min-size 100 MiB)");
  c.max_size = p.bytes("max_size", c.max_size, "largest limit (--max-size 100 GiB)");
  if (c.max_size < c.min_size) p.fail("max_size", "must be at least min_size");
  return c;
}

Bytes Senpai::sanitize(const GuestObservation& g, Guest& s, double limit) const {
  // import_limit(): a limit someone else changed starts again from the current size.
  if (s.limit && *s.limit != g.target) limit = static_cast<double>(g.actual.value());
  limit = std::clamp(limit, static_cast<double>(cfg_.min_size.value()),
                     static_cast<double>(cfg_.max_size.value()));
  const Bytes out = Bytes::from_pages(static_cast<std::uint64_t>(limit) / kPageSize);
  s.limit = out;
  return out;
}

std::optional<PolicyActions::BalloonRequest> Senpai::tick_guest(const GuestObservation& g,
                                                                Guest& s) {
  const Duration total = g.memory_stall.value_or(Duration{});
  const std::int64_t delta = total.ns() - s.last_total.ns();
  s.last_total = total;
  s.integral_ns += delta;
  const double pressure = static_cast<double>(cfg_.pressure.ns());
  const double integral = static_cast<double>(s.integral_ns);
  double factor = 0;
  if (s.integral_ns > cfg_.pressure.ns()) {
    const double err = integral / pressure;
    factor = std::min(std::pow(err / cfg_.coeff_backoff, 2) * cfg_.max_backoff, cfg_.max_backoff);
    s.grace_ticks = cfg_.interval - 1;
  } else if (s.grace_ticks > 0) {
    --s.grace_ticks;
    return std::nullopt;
  } else {
    const double err = pressure / std::max(integral, 1000.0);  // max(integral, 1 us)
    factor = -std::min(std::pow(err / cfg_.coeff_probe, 2) * cfg_.max_probe, cfg_.max_probe);
    s.grace_ticks = cfg_.interval - 1;
  }
  const double stalled_ms = integral / 1e6;
  s.integral_ns = 0;
  const double current = static_cast<double>((s.limit ? *s.limit : g.actual).value());
  const Bytes target = sanitize(g, s, current + current * factor);
  if (target == g.target) return std::nullopt;
  return PolicyActions::BalloonRequest{
      g.key, target,
      fmt::format("stall {:.2f} ms {} {:.0f} ms: {:+.2f}%", stalled_ms,
                  factor > 0 ? ">" : "<=", pressure / 1e6, 100 * factor)};
}

PolicyActions Senpai::tick(const HostObservation& now) {
  PolicyActions out;
  std::map<std::uint32_t, Guest> alive;
  for (const GuestObservation& g : now.guests) {
    auto it = guests_.find(g.key);
    if (it == guests_.end()) {
      // A new guest: its limit starts at its current size, the probe after a full interval.
      Guest s;
      s.last_total = g.memory_stall.value_or(Duration{});
      s.grace_ticks = cfg_.interval;
      s.limit = g.target;
      alive.emplace(g.key, s);
      continue;
    }
    Guest s = it->second;
    if (auto r = tick_guest(g, s)) out.balloons.push_back(std::move(*r));
    alive.emplace(g.key, s);
  }
  guests_ = std::move(alive);
  return out;
}

}  // namespace memvirt
