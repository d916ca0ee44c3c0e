// Linux KSM's control files (/sys/kernel/mm/ksm), for the runs that use the machine's own KSM
// (`memvirt bench dedup`, the lab). The root is a parameter so tests can point it at a fake
// directory. ksmd's CPU time is in real/proc_stats.hpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "real/ksm_state.hpp"

namespace memvirt {

class KsmSysfs {
 public:
  explicit KsmSysfs(std::filesystem::path root = "/sys/kernel/mm/ksm") : root_(std::move(root)) {}

  // True when KSM exists here and we may control it; otherwise `why` says what is missing.
  [[nodiscard]] bool available(std::string& why) const;
  [[nodiscard]] bool has(const std::string& knob) const;
  // The knob's value without the newline; for a choice ("[none] scan-time") the chosen word.
  // Throws std::runtime_error naming the file if it cannot be read.
  [[nodiscard]] std::string read(const std::string& knob) const;
  [[nodiscard]] std::uint64_t read_number(const std::string& knob) const;
  // Throws std::runtime_error naming the file and value if the kernel refuses it.
  void write(const std::string& knob, const std::string& value) const;
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

// Applies KSM settings and puts every previous value back when destroyed, on any exit path.
// Settings are applied in order with `run` last (so ksmd starts fully configured); restoring
// stops ksmd first (`run` back to its old value), then the others in reverse order. Knobs
// the kernel lacks are skipped (see skipped()). A knob another process changed since it was
// applied is left as that process set it (see restore()).
//
// Exits that run no destructor (SIGKILL, a crash) are covered by a state file (ksm_state.hpp):
// before the first write to sysfs the original values are saved in `store`, and once they are
// back the file is removed. A guard that finds a state file left by a process that no longer
// runs first puts those values back (see recovered()), and only then saves the values it
// finds, which are the host's own again.
class KsmSettingsGuard {
 public:
  using Settings = std::vector<std::pair<std::string, std::string>>;
  // If applying fails part-way, what was applied is restored before the error propagates.
  // Throws KsmStateError, having changed nothing, when a state file for this root cannot be
  // read or is corrupt, when the run that wrote it still runs, or when the state file cannot
  // be written.
  KsmSettingsGuard(const KsmSysfs& fs, Settings settings, KsmStateStore store);
  ~KsmSettingsGuard();
  KsmSettingsGuard(const KsmSettingsGuard&) = delete;
  KsmSettingsGuard& operator=(const KsmSettingsGuard&) = delete;

  // Writes `value` to `knob` while the guard lives, for a controller that tunes KSM again and
  // again: a knob not yet guarded has its original value read and saved first (in memory and
  // in the state file); a guarded one keeps its original and the state file records the new
  // value as the one the run wrote, so a recovery after a crash still puts the original back.
  // Throws std::runtime_error naming the file when the knob does not exist or the kernel
  // refuses the value (the knob keeps its previous value), KsmStateError when the state file
  // cannot be written (nothing was changed), std::logic_error after restore().
  void set(const std::string& knob, const std::string& value);
  // Restores now (idempotent). Returns the knobs not restored, with the reason. The state
  // file is removed unless a value could not be written back (then the next run, or
  // `memvirt restore`, tries again).
  std::vector<std::string> restore();
  // The first applied knob whose value is no longer the one applied (another process changed
  // it), or nullopt.
  [[nodiscard]] std::optional<std::string> changed_by_others() const;
  [[nodiscard]] const Settings& saved() const { return saved_; }
  [[nodiscard]] const std::vector<std::string>& skipped() const { return skipped_; }
  // What was put back from an interrupted run's state file before applying, for the caller to
  // tell the user (on stderr); nullopt when there was none.
  [[nodiscard]] const std::optional<std::string>& recovered() const { return recovered_; }

 private:
  const KsmSysfs& fs_;
  KsmStateStore store_;
  KsmSavedState state_;  // what the state file holds while settings are changed
  Settings saved_;       // knob -> previous value, in the order applied
  Settings applied_;     // knob -> value written, in the same order
  std::vector<std::string> skipped_;
  std::optional<std::string> recovered_;
  bool state_saved_ = false;  // the state file is ours to remove
  bool restored_ = false;
};

}  // namespace memvirt
