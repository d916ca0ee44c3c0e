#include "policy/policy.hpp"

#include <algorithm>

namespace memvirt {

const GuestObservation* HostObservation::guest(std::uint32_t key) const {
  for (const GuestObservation& g : guests) {
    if (g.key == key) return &g;
  }
  return nullptr;
}

unsigned clamp_actions(const HostObservation& now, PolicyActions& actions) {
  unsigned changed = 0;
  std::vector<PolicyActions::BalloonRequest> kept;
  kept.reserve(actions.balloons.size());
  for (PolicyActions::BalloonRequest& r : actions.balloons) {
    const GuestObservation* g = now.guest(r.guest);
    if (g == nullptr) {
      ++changed;
      continue;
    }
    const Bytes lo = std::min(g->min, g->memory);
    const Bytes hi = std::min(std::max(g->max, lo), g->memory);
    Bytes t = std::clamp(r.target, lo, hi);
    t = Bytes::from_pages(t.pages());
    if (t != r.target) ++changed;
    r.target = t;
    kept.push_back(std::move(r));
  }
  actions.balloons = std::move(kept);
  return changed;
}

}  // namespace memvirt
