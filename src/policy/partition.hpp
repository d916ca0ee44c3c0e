// Partitioning, Xen's default: no overcommit. A guest starts only when every guest's memory,
// its own included, fits the host's memory; nothing is ever taken back, and the memory the
// guests do not use stays fallow.
#pragma once

#include "policy/policy.hpp"

namespace memvirt {

struct PartitionConfig {
  Bytes reserve{0};  // host memory no guest may have (dom0's, on Xen)
};

class Partition final : public Policy {
 public:
  using Config = PartitionConfig;
  explicit Partition(PartitionConfig cfg) : cfg_(cfg) {}
  static PartitionConfig config_from(Params& p) {
    PartitionConfig c;
    c.reserve = p.bytes("reserve", c.reserve, "host memory kept out of the partition (0)");
    return c;
  }

  [[nodiscard]] std::string name() const override { return "partition"; }
  [[nodiscard]] PolicyInputs needs() const override { return {}; }
  // It never acts; it only decides at launch.
  [[nodiscard]] Duration sample_interval() const override { return Duration::seconds(3600); }
  PolicyActions tick(const HostObservation& /*now*/) override { return {}; }
  [[nodiscard]] bool admits(const HostObservation& now, Bytes memory) const override {
    std::uint64_t given = memory.value() + cfg_.reserve.value();
    for (const GuestObservation& g : now.guests) given += g.memory.value();
    return given <= now.total.value();
  }

 private:
  PartitionConfig cfg_;
};

}  // namespace memvirt
