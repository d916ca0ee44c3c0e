// The host's own KSM settings, kept on disk while a run has changed them, so that a run killed
// without a chance to clean up (SIGKILL, a crash, power loss) does not leave the host with
// memvirt's settings, and the next run does not take those for the host's own. One JSON file
// per sysfs root (memvirt-ksm-state/1): the root, the original value of every knob about to
// be changed and the value memvirt writes, and the process that wrote it. KsmSettingsGuard
// (ksm_sysfs.hpp) writes it before its first write to sysfs and removes it once the settings
// are back; the next guard on that root, or `memvirt restore`, puts back what a dead run left.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace memvirt {

class KsmSysfs;

// A state file that cannot be read or is not one, another live run owning the settings, or a
// value that cannot be put back: a condition for the user to resolve, one line, naming the
// file. The state file is never deleted on such an error.
struct KsmStateError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct KsmKnobState {
  std::string knob;
  std::string original;  // the host's value before the run
  std::string set;       // the value the run writes
};

struct KsmSavedState {
  std::filesystem::path root;       // the sysfs folder, as given to KsmSysfs
  long pid = 0;                     // the process that changed the settings
  std::uint64_t pid_start = 0;      // its start time (clock ticks after boot; 0: unknown)
  std::string process;              // its name (/proc/<pid>/comm), for messages
  std::string written;              // when, UTC, ISO 8601
  std::vector<KsmKnobState> knobs;  // in the order applied (`run` last)
};

// Where state files live: $MEMVIRT_STATE_DIR when set; else /var/lib/memvirt when it can be
// written (root); else $XDG_STATE_HOME/memvirt, else ~/.local/state/memvirt. Throws
// KsmStateError when none applies (no HOME).
std::filesystem::path ksm_state_dir_from_environment();

class KsmStateStore {
 public:
  explicit KsmStateStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  static KsmStateStore from_environment() {
    return KsmStateStore(ksm_state_dir_from_environment());
  }

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  // The state file of one sysfs root: ksm-<the root's path, escaped>-<hash>.json.
  [[nodiscard]] std::filesystem::path file_for(const std::filesystem::path& root) const;
  // nullopt when there is no state file for `root`. Throws KsmStateError naming the file when
  // it cannot be read, is not a memvirt KSM state file, or is another root's.
  [[nodiscard]] std::optional<KsmSavedState> load(const std::filesystem::path& root) const;
  // Writes atomically (a temporary file, fsync, rename, fsync of the folder), creating the
  // folder. Throws KsmStateError naming the file on failure; then no state file was replaced.
  void save(const KsmSavedState& state) const;
  // Removes the state file of `root` if there is one; throws KsmStateError if it cannot.
  void remove(const std::filesystem::path& root) const;

 private:
  std::filesystem::path dir_;
};

// This process, as a state file records it.
KsmSavedState ksm_state_of_this_process(const std::filesystem::path& root);

// Whether the process a state file names still runs: its pid exists, is no zombie and, when
// the start time is known, started then (a reused pid is another process). `proc` is /proc.
bool ksm_state_owner_alive(const KsmSavedState& state, const std::filesystem::path& proc = "/proc");

// If a state file for `fs`'s root was left by a process that no longer runs, puts its original
// values back (`run` first, so ksmd stops before its parameters change, then the others in
// reverse order), removes the file and returns what it did:
//   "restored host KSM settings left by an interrupted run (pid N): run=0, pages_to_scan=100"
// A knob holding neither the original value nor the one the run wrote was changed by another
// program since, and is left as it is (said in the message). nullopt when there is no state
// file. Throws KsmStateError, keeping the file, when it cannot be read or is corrupt, when its
// process still runs (another memvirt run owns KSM), or when a value cannot be written back.
std::optional<std::string> recover_ksm_settings(const KsmSysfs& fs, const KsmStateStore& store);

}  // namespace memvirt
