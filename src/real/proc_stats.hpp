// What the running machine's /proc says about other processes and kernel threads: finding a
// thread by name and its CPU time, for measurements of real KSM and real QEMU guests. The root
// is a parameter so tests can point it at a fake directory.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

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

}  // namespace memvirt
