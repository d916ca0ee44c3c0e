// A real host for a policy (policy/policy.hpp): the HostObservation built from what the
// machine and QEMU say, and PolicyActions carried out through QMP and KSM's sysfs. One
// adapter for every user of real guests: `memvirt control` (control/daemon.hpp) adds the
// guests it finds on QMP sockets; the lab (lab/lab_run.cpp) can add the guests it starts,
// handing over their QmpClients and reaching them again through guest(key).qmp().
//
// The observation: MemTotal, MemFree and Buffers + Cached from <proc>/meminfo, the "some"
// total of <proc>/pressure/memory when the kernel has PSI, KSM's counters when a KsmControl
// is given; per guest its memory (query-memory-size-summary), the balloon's actual size
// (query-balloon), its stats report (the balloon's guest-stats), QEMU's VmRSS, the target
// last set (the actual size when none was) and the operator's bounds resolved for its
// memory. QMP gives no guest agent data: committed and memory_stall stay empty, and a policy
// that needs them is refused (missing()).
//
// A guest whose reply makes no sense, or fails, is left out of that tick's observation
// (an event kSkip names the guest, the command and the field); a guest whose socket closed
// is dropped for good (kLeave). Neither stops the other guests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/control_event.hpp"
#include "control/ksm_control.hpp"
#include "control/qmp_guest.hpp"
#include "policy/policy.hpp"

namespace memvirt {

struct HostSources {
  std::filesystem::path proc = "/proc";
  KsmControl* ksm = nullptr;  // KSM observed (and tuned) when set; the caller owns it
};

class QmpHost {
 public:
  explicit QmpHost(HostSources sources) : src_(std::move(sources)) {}

  // What a policy needing `needs` would lack here, as a sentence; empty when nothing.
  [[nodiscard]] std::string missing(const PolicyInputs& needs) const;

  // Adds a guest; returns its key, which its GuestObservations and balloon requests carry.
  std::uint32_t add(QmpGuest guest);
  // The guest of `key`, or nullptr when it is gone.
  QmpGuest* guest(std::uint32_t key);
  // Takes a guest out (it is no longer observed), returning it.
  std::optional<QmpGuest> remove(std::uint32_t key);
  [[nodiscard]] std::size_t size() const { return guests_.size(); }
  [[nodiscard]] std::vector<std::uint32_t> keys() const;

  struct Observed {
    std::optional<HostObservation> host;  // nullopt: the host itself could not be read
    std::vector<ControlEvent> events;     // guests skipped, dropped, recovered; notices
    unsigned skipped = 0;                 // guests left out of this observation
  };
  // Reads the host and every guest at `since_start` (the policy's clock) and `unix_now` (the
  // wall clock stats reports are stamped with, in seconds). Guests whose socket closed are
  // removed.
  Observed observe(Duration since_start, std::int64_t unix_now);

  // Clamps `actions` into each guest's bounds (clamp_actions) and carries them out: a
  // `balloon` command for each request whose clamped target differs from the guest's
  // target, then KSM's settings. With `dry_run` nothing is sent or written, but the targets
  // are remembered as if set, so the next observation shows what the policy would have set.
  // Returns one event per action (kBalloon, kKsm), each marked dry_run or failed, and a
  // kLeave for a guest whose socket closed meanwhile (removed).
  std::vector<ControlEvent> carry_out(const HostObservation& now, PolicyActions actions,
                                      bool dry_run);

 private:
  struct Entry {
    explicit Entry(QmpGuest g) : guest(std::move(g)) {}
    QmpGuest guest;
    std::string problem;         // the error that made the last ticks skip it; empty: none
    unsigned skipped_ticks = 0;  // since that error first came
    std::string unreported;      // the statistics last said to be missing
    bool rss_noted = false;      // the operator was told QEMU's RSS is unknown
  };
  std::optional<GuestObservation> observe_guest(Entry& e, std::uint32_t key, std::int64_t unix_now,
                                                Observed& out);

  HostSources src_;
  std::map<std::uint32_t, Entry> guests_;
  std::uint32_t next_key_ = 0;
};

}  // namespace memvirt
