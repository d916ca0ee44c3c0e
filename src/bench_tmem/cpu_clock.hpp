// CPU time of the calling thread: what one put or get costs the CPU doing it.
#pragma once

#include <ctime>

namespace memvirt {

inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace memvirt
