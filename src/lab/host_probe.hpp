// What the lab measures on the host, from /proc and /sys: a QEMU process's guest RAM and
// resident memory, its CPU time, the host's free memory and KSM's counters. Readers take
// the file system root as a parameter so tests can point them at fixture files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/types.hpp"

namespace memvirt {

// One mapping's counters from /proc/PID/smaps, in bytes.
struct MappingUsage {
  std::uint64_t size = 0;
  std::uint64_t rss = 0;
  std::uint64_t pss = 0;  // shared pages (KSM) divided among the processes mapping them
  std::uint64_t private_bytes = 0;
  std::uint64_t anon_huge = 0;  // backed by transparent huge pages
};

// The guest RAM of a QEMU process: the smallest anonymous mapping of at least `guest_memory`
// bytes in `smaps` text (QEMU maps each RAM block once; the guest's RAM is the only
// anonymous mapping that large). nullopt when there is none.
std::optional<MappingUsage> find_guest_ram(const std::string& smaps, Bytes guest_memory);

// Reads /proc/PID/smaps; nullopt when the process is gone or has no such mapping.
std::optional<MappingUsage> guest_ram_usage(pid_t pid, Bytes guest_memory);

// Resident set of the whole process (/proc/PID/statm), in bytes; 0 when gone.
std::uint64_t process_rss_bytes(pid_t pid);

// KSM's sysfs counters (pages).
struct KsmCounters {
  std::uint64_t pages_shared = 0, pages_sharing = 0, pages_unshared = 0, pages_volatile = 0;
  std::uint64_t full_scans = 0, ksm_zero_pages = 0, pages_scanned = 0;
  std::int64_t general_profit = 0;  // bytes
};
KsmCounters read_ksm_counters(const std::string& dir = "/sys/kernel/mm/ksm");

}  // namespace memvirt
