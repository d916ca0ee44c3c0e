// The host's KSM, configured for a lab run through /sys/kernel/mm/ksm and put back as it was
// afterwards. KSM is host-wide: the settings a run writes affect every process that asked for
// merging, so they are restored even when the run fails or is interrupted. The saving and
// restoring is real/ksm_sysfs.hpp's; this adds the lab's rules: every setting must exist, and
// failures are LabErrors.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "real/ksm_sysfs.hpp"

namespace memvirt {

class KsmHost {
 public:
  // `state_dir`: where the original values are kept while changed (real/ksm_state.hpp);
  // empty: the default (ksm_state_dir_from_environment()).
  explicit KsmHost(std::string dir = "/sys/kernel/mm/ksm", std::filesystem::path state_dir = {})
      : fs_(std::move(dir)), state_dir_(std::move(state_dir)) {}
  KsmHost(const KsmHost&) = delete;
  KsmHost& operator=(const KsmHost&) = delete;

  // Saves each setting's current value (in memory and in a state file), writes the new ones in
  // order, then starts ksmd (run = 1). Throws LabError naming the file, having changed
  // nothing, when a setting does not exist or another memvirt run owns KSM, and after
  // restoring what it had changed when a write fails. Returns, for the user, what was put
  // back first from a state file an interrupted run left; nullopt when there was none.
  std::optional<std::string> apply(
      const std::vector<std::pair<std::string, std::string>>& settings);
  // Writes the saved values back: run first (stopping ksmd before its parameters change),
  // then the others in reverse order. A setting that no longer holds the value written (another
  // program changed it meanwhile) is left as it is. Returns one line per value not restored.
  // Also done on destruction.
  std::vector<std::string> restore();

 private:
  KsmSysfs fs_;
  std::filesystem::path state_dir_;
  std::unique_ptr<KsmSettingsGuard> guard_;
};

}  // namespace memvirt
