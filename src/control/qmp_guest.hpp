// One running QEMU guest as a host policy reaches it: its QMP connection, its name, QEMU's
// pid (for the resident size in /proc), the operator's bounds on its balloon target and the
// last target asked. The guest must have a virtio-balloon device with id=balloon0 (QOM path
// /machine/peripheral/balloon0, as the lab's QEMU command line gives it).
//
// Every reply is read by control/guest_replies.hpp: one that makes no sense is a
// GuestReplyError naming the guest and the field; an error reply or protocol failure is a
// QmpError; a closed socket (QEMU exited) a QmpDisconnected, after which the guest is done.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "control/guest_replies.hpp"
#include "control/limits.hpp"
#include "control/qmp.hpp"
#include "core/types.hpp"

namespace memvirt {

inline constexpr const char* kBalloonQomPath = "/machine/peripheral/balloon0";

class QmpGuest {
 public:
  // `client` is connected and negotiated; `socket` names it in messages.
  QmpGuest(std::string name, std::string socket, QmpClient client, GuestBounds bounds);

  // The name QEMU was started with (-name; query-name), else the socket's file name without
  // its ".sock". Throws QmpError when QEMU does not answer.
  static std::string name_of(QmpClient& client, const std::string& socket);

  struct Reading {
    Bytes memory;  // with an empty balloon (base plus plugged memory)
    Bytes actual;  // what the guest has now
    GuestStatsReading stats;
  };
  // One sample: query-memory-size-summary, query-balloon and the balloon's guest-stats. The
  // wall clock (unix seconds) is read once guest-stats has come: a report the guest sent
  // during this sample is not from the future.
  Reading read(const std::function<std::int64_t()>& unix_now);
  // query-memory-size-summary alone.
  Bytes memory();
  // QMP `balloon`: the memory the guest is to have, in bytes. Remembers it as target().
  void set_balloon(Bytes target);

  // guest-stats-polling-interval in seconds (0: off).
  std::int64_t polling_interval();
  // Sets it, remembering the value found first so restore_polling() can put it back.
  void set_polling_interval(std::int64_t seconds);
  // Whether the balloon device has deflate-on-oom=on.
  bool deflate_on_oom();
  // Puts back the interval found before set_polling_interval(); nothing if never set.
  void restore_polling();
  [[nodiscard]] bool polling_changed() const { return polling_before_.has_value(); }

  // The last target asked; nullopt before the first (the caller may then take `actual`).
  [[nodiscard]] const std::optional<Bytes>& target() const { return target_; }
  void assume_target(Bytes t) { target_ = t; }

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& socket() const { return socket_; }
  [[nodiscard]] std::optional<pid_t> pid() const { return pid_; }
  [[nodiscard]] const GuestBounds& bounds() const { return bounds_; }
  [[nodiscard]] bool connected() const { return qmp_.is_open(); }
  // For callers with commands of their own (the lab's samples, `quit`).
  QmpClient& qmp() { return qmp_; }

 private:
  std::string name_;
  std::string socket_;
  QmpClient qmp_;
  std::optional<pid_t> pid_;
  GuestBounds bounds_;
  std::optional<Bytes> target_;
  std::optional<std::int64_t> polling_before_;
};

}  // namespace memvirt
