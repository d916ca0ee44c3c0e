// What the running machine's /proc says about other processes and kernel threads: finding a
// thread by name and its CPU time, for measurements of real KSM and real QEMU guests; the
// host's memory and memory pressure and a process's resident size, for a controller of real
// guests (`memvirt control`). The root is a parameter so tests can point it at a fake
// directory.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/types.hpp"

namespace memvirt {

// The pid of the first task named `comm` (e.g. the kernel thread "ksmd"), found through
// <proc>/*/comm.
std::optional<int> proc_find_comm(const std::string& comm,
                                  const std::filesystem::path& proc = "/proc");

// CPU seconds of the task `pid` alone: from <proc>/<pid>/schedstat (nanoseconds) when the
// kernel has it, else user plus system time from <proc>/<pid>/stat (in ticks). For a single
// thread such as ksmd.
std::optional<double> proc_cpu_seconds(int pid, const std::filesystem::path& proc = "/proc");

// User plus system CPU seconds of process `pid` and all its threads (<proc>/<pid>/stat, in
// ticks): for a multithreaded process such as QEMU, whose schedstat counts one thread.
std::optional<double> proc_process_cpu_seconds(int pid,
                                               const std::filesystem::path& proc = "/proc");

// Seconds `pid` spent runnable but waiting for a CPU (<proc>/<pid>/schedstat), if known: how
// much other load delayed it.
std::optional<double> proc_wait_seconds(int pid, const std::filesystem::path& proc = "/proc");

// The fields of /proc/meminfo a host policy reads.
struct ProcMeminfo {
  Bytes total;                     // MemTotal
  Bytes free;                      // MemFree
  Bytes buffers;                   // Buffers
  Bytes cached;                    // Cached
  std::optional<Bytes> available;  // MemAvailable (Linux 3.14 and later)
};

// Parses meminfo text ("MemTotal:  16318712 kB" lines). Throws std::runtime_error naming
// `file` and the field when one of the four is missing or is not a number of kB, or when
// MemAvailable is there but malformed or more than MemTotal.
ProcMeminfo parse_meminfo(const std::string& text, const std::string& file);
// <proc>/meminfo; throws std::runtime_error naming the file when it cannot be read or parsed.
ProcMeminfo proc_meminfo(const std::filesystem::path& proc = "/proc");

// The "some" line's total of pressure stall text ("some avg10=0.00 avg60=0.00 avg300=0.00
// total=1234", microseconds): the time at least one task waited for memory. Throws
// std::runtime_error naming `file` when the line or its total is missing or malformed.
Duration parse_pressure_some_total(const std::string& text, const std::string& file);
// <proc>/pressure/memory's "some" total; nullopt when the file does not exist (a kernel
// without PSI, or booted with psi=0). Throws like parse_pressure_some_total otherwise.
std::optional<Duration> proc_memory_pressure(const std::filesystem::path& proc = "/proc");

// VmRSS of <proc>/<pid>/status text; nullopt when the process has no such line (a kernel
// thread). Throws std::runtime_error naming `file` when the line is malformed.
std::optional<Bytes> parse_status_vm_rss(const std::string& text, const std::string& file);
// The resident size of process `pid`; nullopt when there is no such process or it has no
// VmRSS line. Throws std::runtime_error naming the file when the line is malformed.
std::optional<Bytes> proc_vm_rss(int pid, const std::filesystem::path& proc = "/proc");

}  // namespace memvirt
