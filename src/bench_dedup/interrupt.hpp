// Ctrl-C during a long measurement: while an InterruptGuard lives, SIGINT and SIGTERM only set
// a flag that the measuring loops poll; they then throw Interrupted, so destructors run and
// put back what the run changed (KSM's settings) before the command exits.
#pragma once

#include <csignal>
#include <stdexcept>

namespace memvirt {

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  [[nodiscard]] static bool requested();
  // Throws Interrupted if a signal arrived.
  static void check() {
    if (requested()) throw Interrupted();
  }

 private:
  struct sigaction old_int_ {};  // handlers in place before the guard, put back after it
  struct sigaction old_term_ {};
};

}  // namespace memvirt
