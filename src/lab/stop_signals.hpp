// Ctrl-C (SIGINT), SIGTERM and SIGHUP turned into a readable file descriptor for the lab's
// event loop, so a stop ends the guests and restores host settings in order instead of
// killing memvirt mid-way. Blocks those signals in the calling thread while it lives (call
// it before any other thread starts); the children the lab starts unblock them.
#pragma once

#include <signal.h>

namespace memvirt {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // Readable once a stop signal has arrived.
  [[nodiscard]] int fd() const { return fd_; }

 private:
  sigset_t old_{};
  int fd_ = -1;
};

}  // namespace memvirt
