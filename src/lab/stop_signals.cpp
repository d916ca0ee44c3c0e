#include "lab/stop_signals.hpp"

#include <fmt/format.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lab/lab_error.hpp"

namespace memvirt {

StopSignals::StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, &old_);
  fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd_ < 0) {
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    throw LabError(fmt::format("signalfd: {}", std::strerror(errno)));
  }
}

StopSignals::~StopSignals() {
  close(fd_);
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

}  // namespace memvirt
