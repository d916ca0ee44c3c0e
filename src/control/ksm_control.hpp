// The host's KSM as a policy sees and tunes it on a real host: the counters and settings of
// /sys/kernel/mm/ksm read into a KsmObservation, and a KsmTuning written back. Writes go
// through a KsmSettingsGuard (real/ksm_sysfs.hpp), so the host's own values are on disk
// before the first change, come back when this object is destroyed or restore() is called,
// and come back after a crash through the state file (`memvirt restore`, or the next run).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "real/ksm_state.hpp"
#include "real/ksm_sysfs.hpp"

namespace memvirt {

class KsmControl {
 public:
  // Read-only when `store` is nullopt (a dry run: nothing is written, no state file). With a
  // store, a state file an interrupted run left is put back first (see recovered()); throws
  // KsmStateError when another live run owns the settings or the file is unreadable, and
  // std::runtime_error naming the file when KSM is missing or not writable.
  KsmControl(KsmSysfs fs, std::optional<KsmStateStore> store);
  KsmControl(const KsmControl&) = delete;
  KsmControl& operator=(const KsmControl&) = delete;

  // run, pages_to_scan, sleep_millisecs, pages_shared, pages_sharing, full_scans. Throws
  // std::runtime_error naming the file that cannot be read.
  [[nodiscard]] KsmObservation read() const;
  // Writes the knobs that differ from `now`: pages_to_scan and sleep_millisecs before run=1,
  // so ksmd starts configured; run=0 alone to stop (its parameters stay). Throws
  // std::logic_error when read-only, std::runtime_error naming the file the kernel refused.
  void apply(const KsmObservation& now, const KsmTuning& t);
  // The host's values back; one line per knob not restored (see KsmSettingsGuard::restore).
  std::vector<std::string> restore();

  [[nodiscard]] bool read_only() const { return !guard_; }
  // Whether a setting was written (and so will be, or was, restored).
  [[nodiscard]] bool changed() const { return guard_ && !guard_->saved().empty(); }
  [[nodiscard]] const std::optional<std::string>& recovered() const { return recovered_; }
  [[nodiscard]] const KsmSysfs& sysfs() const { return fs_; }

 private:
  KsmSysfs fs_;  // before guard_, which refers to it
  std::unique_ptr<KsmSettingsGuard> guard_;
  std::optional<std::string> recovered_;
};

}  // namespace memvirt
