#include "control/policy_setup.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/error.hpp"
#include "core/params.hpp"

namespace memvirt {
namespace {

// The parameter that sets a policy's sampling interval; nullopt when it has none.
std::optional<std::string> interval_key(const std::string& policy) {
  if (policy == "memvirt") return "tick";
  if (policy == "mom") return "monitor_interval";
  return std::nullopt;
}

}  // namespace

std::vector<std::string> control_policy_names() {
  return {"memvirt", "mom"};
}

ControlPolicy make_control_policy(const std::string& name, const std::optional<Duration>& interval,
                                  bool ksm) {
  bool offered = false;
  for (const auto& n : control_policy_names()) offered = offered || n == name;
  if (!offered) {
    throw InputError(SourcePlace{"", 0, "--policy"},
                     fmt::format("'{}': expected memvirt or mom", name));
  }
  YAML::Node node(YAML::NodeType::Map);
  node["impl"] = name;
  node["ksm"] = ksm ? "true" : "false";
  const std::optional<std::string> key = interval_key(name);
  if (interval) {
    if (!key) {
      throw InputError(SourcePlace{"", 0, "--interval"},
                       fmt::format("the {} policy's interval cannot be set", name));
    }
    node[*key] = canonical_duration(*interval);
  }
  // No file: errors name the policy's key alone.
  auto ctx = std::make_shared<ParamContext>("");
  Params p(node, "", ctx);
  SpecPtr<Policy> spec;
  try {
    spec = make_policy_registry().parse(p);
    ctx->check_all_read(node);
  } catch (const InputError& e) {
    if (interval) {
      throw InputError(SourcePlace{"", 0, "--interval"},
                       fmt::format("'{}': the {} policy refuses it: {}",
                                   canonical_duration(*interval), name, e.what()));
    }
    throw InputError(SourcePlace{"", 0, "--policy"}, fmt::format("{}: {}", name, e.what()));
  }
  ControlPolicy out;
  out.policy = spec->make();
  YAML::Emitter y;
  y << YAML::Flow << ctx->effective();
  out.config = y.c_str();
  return out;
}

}  // namespace memvirt
