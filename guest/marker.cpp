#include "marker.hpp"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace guest {

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * kNsPerSecond +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

void sleep_until(std::uint64_t t_ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t_ns / kNsPerSecond);
  ts.tv_nsec = static_cast<long>(t_ns % kNsPerSecond);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void marker(const std::string& tag, const std::string& event, const std::string& fields) {
  const std::uint64_t t = now_ns();
  char head[96];
  std::snprintf(head, sizeof head, "@@memvirt %llu.%09llu ",
                static_cast<unsigned long long>(t / kNsPerSecond),
                static_cast<unsigned long long>(t % kNsPerSecond));
  std::string line = head + tag + " " + event;
  if (!fields.empty()) line += " " + fields;
  line += "\n";
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = write(STDOUT_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void fail(const std::string& tag, const std::string& what) {
  marker(tag, "error", "what=" + what);
  std::exit(2);
}

}  // namespace guest
