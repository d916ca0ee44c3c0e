// Citrix Dynamic Memory Control (xapi-project/squeezed).
//
// Every guest has a dynamic range [dynamic_min, dynamic_max] (here the guest's balloon bounds
// [min, max]). Every second squeezed computes the memory it may hand out,
//   surplus = host free + sum over guests of max(0, actual - dynamic_min - 2 inaccuracy)
//             - host target,
// with a host target of 9 MiB kept free (the 1 MiB emergency pool and 8 MiB extra) and a
// balloon inaccuracy of 4 KiB per guest, and gives every guest the same fraction
//   g = clamp(surplus / sum(dynamic_max - dynamic_min), 0, 1)
// of its range: target = dynamic_min + g (dynamic_max - dynamic_min). Guest pressure plays
// no part. Two phases (lib/squeeze.ml one_iteration): while some guest's new target is
// below its actual memory by more than the inaccuracy (it must free memory), only those
// targets are set; the others are set once nothing is left to free.
// Not modelled: squeezed's detection of guests that make no progress for 5 s (it then
// treats them as stuck and plans around them); in the simulator every balloon moves.
#pragma once

#include "policy/policy.hpp"

namespace memvirt {

struct DmcConfig {
  Duration interval = Duration::seconds(1);
  Bytes host_target{9ULL << 20};  // squeezed's target_host_free_mem_kib
  Bytes inaccuracy{4ULL << 10};   // squeezed's per-domain inaccuracy_kib
};

class Dmc final : public Policy {
 public:
  using Config = DmcConfig;
  explicit Dmc(DmcConfig cfg) : cfg_(cfg) {}
  static DmcConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "dmc"; }
  [[nodiscard]] PolicyInputs needs() const override {
    PolicyInputs in;
    in.balloon = true;
    return in;
  }
  [[nodiscard]] Duration sample_interval() const override { return cfg_.interval; }
  PolicyActions tick(const HostObservation& now) override;
  // The share of its range every guest gets for `now` (the g above).
  [[nodiscard]] double share(const HostObservation& now) const;

 private:
  DmcConfig cfg_;
};

}  // namespace memvirt
