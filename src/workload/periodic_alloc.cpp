#include "workload/periodic_alloc.hpp"

namespace memvirt {

PeriodicAlloc::Config PeriodicAlloc::config_from(Params& p) {
  Config c;
  c.chunk_pages = read_touch_chunk(p);
  c.period = p.duration("period", Duration::seconds(1800), "time between allocations");
  if (c.period.ns() <= 0) p.fail("period", "must be positive");
  if (!p.has("amount")) p.fail("amount", "missing: how much each period allocates");
  c.amount = SizeDistribution::from_params(p.child("amount"));
  if (p.has("hold") == p.has("mean_in_use")) {
    p.fail("", "give exactly one of 'hold' (time the amount is kept) or 'mean_in_use'");
  }
  if (p.has("hold"))
    c.hold = p.duration("hold", Duration{0}, "time the amount is held after touching");
  if (p.has("mean_in_use")) {
    c.mean_in_use = p.bytes("mean_in_use", Bytes{0}, "time-averaged amount in use");
    if (*c.mean_in_use > c.amount.mean()) p.fail("mean_in_use", "exceeds the mean amount");
  }
  const std::string phase =
      p.string("phase", "random", "'random' (uniform in the period) or a duration");
  if (phase == "random") {
    c.random_phase = true;
  } else {
    c.random_phase = false;
    c.phase = p.duration("phase", Duration{0}, "offset of the first allocation");
  }
  return c;
}

PeriodicAlloc::Draws::Draws(const Config& c, std::uint64_t seed, std::uint64_t vm_index,
                            std::uint64_t workload_index)
    : cfg_(&c), rng_(seed, "workload.periodic_alloc", vm_index * 1024 + workload_index) {}

Duration PeriodicAlloc::Draws::phase() {
  if (!cfg_->random_phase) return cfg_->phase;
  return Duration{
      static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(cfg_->period.ns())))};
}

}  // namespace memvirt
