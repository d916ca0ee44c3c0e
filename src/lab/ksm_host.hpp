// The host's KSM, configured for a lab run through /sys/kernel/mm/ksm and put back as it was
// afterwards. KSM is host-wide: the settings a run writes affect every process that asked for
// merging, so they are restored even when the run fails or is interrupted.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace memvirt {

class KsmHost {
 public:
  explicit KsmHost(std::string dir = "/sys/kernel/mm/ksm") : dir_(std::move(dir)) {}
  // Restores anything still changed.
  ~KsmHost();
  KsmHost(const KsmHost&) = delete;
  KsmHost& operator=(const KsmHost&) = delete;

  // Saves each setting's current value, writes the new ones in order, then starts ksmd
  // (run = 1). Throws LabError naming the file on the first write that fails, after restoring
  // what it had changed.
  void apply(const std::vector<std::pair<std::string, std::string>>& settings);
  // Writes the saved values back: run first (stopping ksmd before its parameters change),
  // then the others in reverse order. A setting that no longer holds the value written (another
  // program changed it meanwhile) is left as it is. Returns one line per value not restored.
  std::vector<std::string> restore();

 private:
  struct Saved {
    std::string name;
    std::string old;      // before the run
    std::string written;  // as read back after writing
  };
  std::string dir_;
  std::vector<Saved> saved_;  // in the order written
};

}  // namespace memvirt
