#include "policy/dmc.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace memvirt {
namespace {

double d(Bytes b) {
  return static_cast<double>(b.value());
}

}  // namespace

DmcConfig Dmc::config_from(Params& p) {
  DmcConfig c;
  c.interval = p.duration("interval", c.interval, "squeezed's balancing loop (1 s)");
  if (c.interval.ns() <= 0) p.fail("interval", "must be positive");
  c.host_target = p.bytes("host_target", c.host_target,
                          "host memory squeezed keeps free (target_host_free_mem_kib, 9 MiB)");
  c.inaccuracy = p.bytes("inaccuracy", c.inaccuracy,
                         "distance from a target that counts as reached (inaccuracy_kib, 4 KiB)");
  return c;
}

double Dmc::share(const HostObservation& now) const {
  double maximum_free = d(now.free);
  double range = 0;
  for (const GuestObservation& g : now.guests) {
    maximum_free += std::max(0.0, d(g.actual) - d(g.min) - 2 * d(cfg_.inaccuracy));
    range += std::max(0.0, d(g.max) - d(g.min));
  }
  const double surplus = std::max(0.0, maximum_free - d(cfg_.host_target));
  if (range <= 0) return 0.0;
  return std::clamp(surplus / range, 0.0, 1.0);
}

PolicyActions Dmc::tick(const HostObservation& now) {
  const double g = share(now);
  std::vector<PolicyActions::BalloonRequest> freeing, allocating;
  for (const GuestObservation& guest : now.guests) {
    const double range = std::max(0.0, d(guest.max) - d(guest.min));
    const Bytes target =
        Bytes::from_pages(static_cast<std::uint64_t>(d(guest.min) + g * range) / kPageSize);
    if (target == guest.target) continue;
    PolicyActions::BalloonRequest r{
        guest.key, target,
        fmt::format("share {:.3f} of [{:.0f}, {:.0f}] MiB", g, guest.min.mib(), guest.max.mib())};
    if (d(guest.actual) - d(target) > d(cfg_.inaccuracy)) {
      freeing.push_back(std::move(r));
    } else {
      allocating.push_back(std::move(r));
    }
  }
  PolicyActions out;
  out.balloons = freeing.empty() ? std::move(allocating) : std::move(freeing);
  return out;
}

}  // namespace memvirt
