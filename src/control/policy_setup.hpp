// The policy `memvirt control` runs: one of the registry's (policy/registry.cpp), built from
// its defaults through the same parser as a scenario's `policy:` entry, so its configuration
// and its checks are the scenario's. What the command line may change:
//   - the sampling interval (`--interval`), for the policies whose interval is one of their
//     parameters: memvirt's `tick`, MOM's `monitor_interval` (its rules still run every
//     `policy_interval`, 10 s, on the samples' average); the policy's own checks apply;
//   - whether it tunes KSM: off unless the operator opts in, so the policy's `ksm` key is
//     set to false without --ksm.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "policy/policy.hpp"

namespace memvirt {

// The policies `memvirt control` offers.
std::vector<std::string> control_policy_names();

struct ControlPolicy {
  std::unique_ptr<Policy> policy;
  std::string config;  // the effective configuration, one line of YAML
};

// Throws InputError naming --policy (an unknown name) or --interval (a policy whose interval
// cannot be set, or that refuses the value, with the policy's reason).
ControlPolicy make_control_policy(const std::string& name, const std::optional<Duration>& interval,
                                  bool ksm);

}  // namespace memvirt
