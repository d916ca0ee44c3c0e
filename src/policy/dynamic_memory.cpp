#include "policy/dynamic_memory.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace memvirt {

DynamicMemoryConfig DynamicMemory::config_from(Params& p) {
  DynamicMemoryConfig c;
  c.interval = p.duration("interval", c.interval, "rebalancing period (1 s)");
  if (c.interval.ns() <= 0) p.fail("interval", "must be positive");
  c.buffer =
      p.real("buffer", c.buffer, "memory kept above committed memory (MemoryBuffer 20%)", 0, 20);
  return c;
}

PolicyActions DynamicMemory::tick(const HostObservation& now) {
  struct Want {
    const GuestObservation* guest;
    double bytes;
  };
  std::vector<Want> wants;
  double growth = 0, freed = 0;
  for (const GuestObservation& g : now.guests) {
    if (!g.committed) continue;
    const double lo = static_cast<double>(std::min(g.min, g.memory).value());
    const double hi = static_cast<double>(std::min(g.max, g.memory).value());
    const double want = std::clamp(static_cast<double>(g.committed->value()) * (1 + cfg_.buffer),
                                   lo, std::max(lo, hi));
    const double actual = static_cast<double>(g.actual.value());
    if (want > actual) growth += want - actual;
    if (want < actual) freed += actual - want;
    wants.push_back({&g, want});
  }
  // What the increases may take: the host's free memory and what the decreases free.
  const double available = static_cast<double>(now.free.value()) + freed;
  const double scale = growth > available && growth > 0 ? available / growth : 1.0;
  PolicyActions out;
  for (const Want& w : wants) {
    const double actual = static_cast<double>(w.guest->actual.value());
    const double size = w.bytes > actual ? actual + (w.bytes - actual) * scale : w.bytes;
    const Bytes target = Bytes::from_pages(static_cast<std::uint64_t>(size) / kPageSize);
    if (target == w.guest->target) continue;
    out.balloons.push_back(
        {w.guest->key, target,
         fmt::format("committed {:.0f} MiB + {:.0f}%{}", w.guest->committed->mib(),
                     100 * cfg_.buffer, scale < 1 ? fmt::format(", growth x{:.2f}", scale) : "")});
  }
  return out;
}

}  // namespace memvirt
