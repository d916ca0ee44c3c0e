// What a controller of real guests did and saw, one record per line of its log: a guest
// joining or leaving, a tick skipped for a guest whose replies made no sense, every action
// with its reason. The host adapter and the daemon return these; the command prints them
// (models never print). Two renderings: one line of text for stderr, one JSON object for
// the --log file.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/types.hpp"
#include "policy/policy.hpp"

namespace memvirt {

struct ControlEvent {
  enum class Kind {
    kStart,    // the daemon began: policy and its configuration
    kJoin,     // a guest is controlled from now on
    kLeave,    // a guest is gone (its QMP socket closed): dropped
    kSkip,     // a guest's reply made no sense or failed: left out of this tick (and of the
               // next ones while the same error repeats, which is not logged again)
    kRecover,  // a skipped guest's replies make sense again
    kNotice,   // something the operator should know (stats polling off, an unreported stat)
    kError,    // a failure that is not one guest's (the host's /proc, KSM's sysfs)
    kBalloon,  // a balloon target set (or, in a dry run, that would be)
    kKsm,      // KSM settings changed (or would be)
    kStop,     // the daemon ended
  };
  Kind kind = Kind::kNotice;
  std::string vm;    // the guest's name; empty for the host
  std::string text;  // the reason of an action; what happened otherwise

  // kBalloon: the guest's target before, what the policy asked, what was set (clamped into
  // the guest's bounds).
  Bytes from, requested, to;
  // kKsm: the settings before and after.
  KsmObservation ksm_from;
  KsmTuning ksm_to;

  bool dry_run = false;  // an action not carried out because this is a dry run
  std::string failed;    // an action that was tried and failed: why
};

// An event of `kind` about guest `vm` (empty: the host) with `text`.
ControlEvent control_event(ControlEvent::Kind kind, std::string vm, std::string text);

// "balloon", "join", ...
const char* control_event_kind(ControlEvent::Kind k);

// One line: "vm1: balloon 2048 MiB -> 1966 MiB (asked 1966 MiB): calm 6 s, ... [dry run]".
std::string control_event_text(const ControlEvent& e);

// {"time": "2024-05-01T10:00:00.123Z", "t": 12.0, "event": "balloon", "vm": "vm1",
//  "from": bytes, "requested": bytes, "to": bytes, "reason": "...", "dry_run": false}; KSM
// events carry "from" and "to" objects of run, pages_to_scan and sleep_ms; others "message".
// `t` is seconds since the daemon started; `at` the wall-clock time (UTC).
nlohmann::json control_event_json(const ControlEvent& e, Duration t,
                                  std::chrono::system_clock::time_point at);

}  // namespace memvirt
