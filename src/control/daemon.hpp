// `memvirt control`: a host policy (policy/) run on the QEMU guests of this host, over their
// QMP sockets, through the host adapter (control/qmp_host.hpp).
//
// Guests are the QMP sockets named, and every socket (or *.sock file) in a folder, which is
// scanned again before each tick so guests that start later are taken in; a socket in the
// folder that cannot be controlled is tried again after `retry_after` or once it is a new
// file. Every sample_interval() of the policy the daemon observes, lets the policy decide and
// carries out its actions (balloon targets clamped into each guest's bounds; KSM only when a
// KsmControl is given). In a dry run it observes and decides the same way and reports every
// action it would take, but sends no `balloon` and no `qom-set` and writes no KSM setting.
//
// A policy that needs a balloon the guest deflates on OOM (memvirt's controller) refuses a
// guest whose balloon device has deflate-on-oom off, as it refuses one without a balloon.
//
// Stats polling: a policy that reads the balloon's stats needs QEMU to poll them. When a
// guest's guest-stats-polling-interval is 0, the daemon sets it to the policy's interval
// (whole seconds), and puts 0 back when it ends; a dry run does that only with
// enable_stats_polling, and otherwise says the policy sees no stats from that guest.
//
// Ending: when `stop_fd` becomes readable (a stop signal; the current tick is finished
// first), after `ticks` ticks, or when no guest is left and there is no folder to find new
// ones in. Then the stats polling intervals it changed and the host's KSM settings are put
// back; balloon targets stay where they were last set. Models never print: every event goes
// to the ControlSink.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "control/control_event.hpp"
#include "control/ksm_control.hpp"
#include "control/limits.hpp"
#include "control/qmp_host.hpp"
#include "policy/policy.hpp"

namespace memvirt {

struct ControlOptions {
  std::vector<std::string> sockets;  // QMP sockets named: each must be controllable at start
  std::string dir;                   // a folder of QMP sockets (empty: none)
  bool dry_run = false;
  bool enable_stats_polling = false;  // in a dry run, turn stats polling on where it is off
  std::chrono::milliseconds qmp_timeout{2000};     // per command, and to reach a named socket
  std::chrono::milliseconds connect_timeout{500};  // to reach a socket found in the folder
  std::chrono::seconds retry_after{30};
  std::uint64_t ticks = 0;  // stop after this many ticks (0: only on a stop signal)
  GuestLimits limits;
  std::filesystem::path proc = "/proc";
  std::string policy_config;  // the policy's effective configuration, for the start record
};

class ControlSink {
 public:
  virtual ~ControlSink() = default;
  // `t`: since the daemon started.
  virtual void record(Duration t, const ControlEvent& e) = 0;
};

struct ControlSummary {
  enum class End { kStopped, kTicks, kNoGuests };
  End end = End::kStopped;
  std::uint64_t ticks = 0;
  std::uint64_t balloon_changes = 0;  // set (or, in a dry run, that would have been)
  std::uint64_t ksm_changes = 0;
  std::uint64_t failed_actions = 0;
  std::uint64_t skipped = 0;  // guests left out of a tick, summed over the ticks
  unsigned joined = 0, left = 0;
  std::vector<std::string> guests;  // controlled at the end
  Duration elapsed;
};

// "stopped after 31 ticks (30.4 s): ..." in one line.
std::string control_summary_text(const ControlSummary& s, bool dry_run);

class ControlDaemon {
 public:
  // `ksm`: KSM observed and (unless read-only) tuned; nullptr: KSM is left alone.
  ControlDaemon(std::unique_ptr<Policy> policy, ControlOptions opt, ControlSink& sink,
                std::unique_ptr<KsmControl> ksm = nullptr);
  ~ControlDaemon();
  ControlDaemon(const ControlDaemon&) = delete;
  ControlDaemon& operator=(const ControlDaemon&) = delete;

  // Checks that the host can give the policy what it needs, connects to every socket named
  // and scans the folder. Throws InputError naming the socket (or --dir, --policy) when a
  // named socket does not exist, cannot be reached, has no balloon device or bounds that
  // contradict each other, when the folder does not exist, or when the policy needs inputs
  // QMP does not give.
  void start();
  // Ticks until one of the endings above; then puts back what it changed, but not balloons.
  ControlSummary run(int stop_fd);

  [[nodiscard]] QmpHost& host() { return host_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Failed {
    std::uintmax_t inode = 0;
    Clock::time_point retry_at;
  };
  // Connects to `path` and adds its guest; the error text when it cannot (named sockets
  // throw InputError instead).
  bool join(const std::string& path, bool named);
  void start_guests();
  void rescan();
  // Forgets the paths of guests the host dropped, so a new QEMU there is taken in.
  void forget_gone();
  void tick(ControlSummary& sum);
  void finish(ControlSummary& sum);
  void emit(const ControlEvent& e);
  [[nodiscard]] Duration since_start() const;

  std::unique_ptr<Policy> policy_;
  ControlOptions opt_;
  ControlSink& sink_;
  std::unique_ptr<KsmControl> ksm_;
  QmpHost host_;
  Clock::time_point start_;
  std::map<std::string, std::uint32_t> joined_;  // socket path -> guest key
  std::map<std::string, Failed> failed_;         // folder sockets not controlled, by path
  std::string dir_problem_;                      // the folder's last error, said once
  bool starting_ = false;
  std::vector<std::pair<Duration, ControlEvent>> pending_;  // emitted while starting
  unsigned joined_count_ = 0;
  unsigned left_count_ = 0;
};

}  // namespace memvirt
