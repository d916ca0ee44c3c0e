#include "lab/ksm_host.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "lab/lab_error.hpp"

namespace memvirt {

std::optional<std::string> KsmHost::apply(
    const std::vector<std::pair<std::string, std::string>>& settings) {
  auto with_run = settings;
  with_run.emplace_back("run", "1");
  for (const auto& [name, value] : with_run) {
    if (!fs_.has(name)) {
      throw LabError(
          fmt::format("host KSM: {} does not exist (is KSM built into the host "
                      "kernel, and is {} a setting of this kernel?)",
                      (fs_.root() / name).string(), name));
    }
  }
  restore();
  try {
    guard_ = std::make_unique<KsmSettingsGuard>(
        fs_, std::move(with_run),
        state_dir_.empty() ? KsmStateStore::from_environment() : KsmStateStore(state_dir_));
    return guard_->recovered();
  } catch (const std::runtime_error& e) {
    throw LabError(fmt::format("host KSM: {}", e.what()));
  }
}

std::vector<std::string> KsmHost::restore() {
  std::vector<std::string> problems;
  if (guard_) problems = guard_->restore();
  guard_.reset();
  return problems;
}

}  // namespace memvirt
