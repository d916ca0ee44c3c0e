// Senpai (facebookincubator/senpai, senpai.py; TMO, ASPLOS 2022) with a guest as its cgroup:
// the guest's memory pressure stall time (PSI "some" total) is its input and the balloon
// target is its memory.high.
//
// Every second, per guest: integral += the stall time since the last tick. Above `pressure`
// (10 ms) it backs off at once: the limit grows by min((integral/pressure/coeff_backoff)^2 x
// max_backoff, max_backoff) of itself, and the next probe waits interval - 1 ticks. Otherwise
// every `interval` (6) ticks it probes: the limit shrinks by min((pressure/max(integral,1 µs)
// /coeff_probe)^2 x max_probe, max_probe) (1%) of itself. Each adjustment resets the integral.
// The limit stays within [min_size, max_size] and whole pages; when the target was changed by
// someone else the limit starts again from the guest's memory (senpai: memory.current).
#pragma once

#include <map>

#include "policy/policy.hpp"

namespace memvirt {

struct SenpaiConfig {
  Duration tick = Duration::seconds(1);
  std::int64_t interval = 6;  // ticks between probes
  Duration pressure = Duration::millis(10);
  double max_probe = 0.01;
  double max_backoff = 1.0;
  double coeff_probe = 10;
  double coeff_backoff = 20;
  Bytes min_size{100ULL << 20};
  Bytes max_size{100ULL << 30};
};

class Senpai final : public Policy {
 public:
  using Config = SenpaiConfig;
  explicit Senpai(SenpaiConfig cfg) : cfg_(cfg) {}
  static SenpaiConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "senpai"; }
  [[nodiscard]] PolicyInputs needs() const override {
    PolicyInputs in;
    in.balloon = true;
    in.guest_stall = true;
    return in;
  }
  [[nodiscard]] Duration sample_interval() const override { return cfg_.tick; }
  PolicyActions tick(const HostObservation& now) override;

 private:
  struct Guest {
    Duration last_total;
    std::int64_t integral_ns = 0;
    std::int64_t grace_ticks = 0;
    std::optional<Bytes> limit;  // the last target this controller set
  };
  std::optional<PolicyActions::BalloonRequest> tick_guest(const GuestObservation& g, Guest& s);
  [[nodiscard]] Bytes sanitize(const GuestObservation& g, Guest& s, double limit) const;

  SenpaiConfig cfg_;
  std::map<std::uint32_t, Guest> guests_;
};

}  // namespace memvirt
