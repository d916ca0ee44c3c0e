// Hyper-V Dynamic Memory, as Microsoft documents it: the guest's integration services report
// its committed memory (hv_balloon's pressure reports: Committed_AS), and every second the
// host sets each guest's memory to its committed memory plus the memory buffer (default 20%),
// within the VM's minimum and maximum. Growth comes from the host's free memory; when that
// does not cover every guest's increase, increases are given in proportion to what each
// asked (the guests' memory weights are equal by default).
// Hot add is the Hyper-V way to grow past the startup memory; here the balloon gives back
// what it took, so a guest grows at most to the memory it booted with.
#pragma once

#include "policy/policy.hpp"

namespace memvirt {

struct DynamicMemoryConfig {
  Duration interval = Duration::seconds(1);
  double buffer = 0.20;  // Hyper-V's MemoryBuffer default, 20%
};

class DynamicMemory final : public Policy {
 public:
  using Config = DynamicMemoryConfig;
  explicit DynamicMemory(DynamicMemoryConfig cfg) : cfg_(cfg) {}
  static DynamicMemoryConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "dynamic_memory"; }
  [[nodiscard]] PolicyInputs needs() const override {
    PolicyInputs in;
    in.balloon = true;
    in.committed = true;
    return in;
  }
  [[nodiscard]] Duration sample_interval() const override { return cfg_.interval; }
  PolicyActions tick(const HostObservation& now) override;

 private:
  DynamicMemoryConfig cfg_;
};

}  // namespace memvirt
