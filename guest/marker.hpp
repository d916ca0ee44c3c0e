// Markers: one line each on the serial console, which the host reads and timestamps on
// arrival. Format: "@@memvirt <guest monotonic seconds> <tag> <event> [key=value ...]".
// Each marker is one write(), so lines from concurrent programs do not interleave. A value
// may hold spaces: words without "=" belong to the value before them.
#pragma once

#include <cstdint>
#include <string>

namespace guest {

constexpr std::uint64_t kNsPerSecond = 1'000'000'000ULL;

// CLOCK_MONOTONIC in nanoseconds.
std::uint64_t now_ns();
// Sleeps until the monotonic clock reaches t (returns at once if it has).
void sleep_until(std::uint64_t t_ns);

void marker(const std::string& tag, const std::string& event, const std::string& fields = "");
// An error marker, then exit status 2.
[[noreturn]] void fail(const std::string& tag, const std::string& what);

}  // namespace guest
