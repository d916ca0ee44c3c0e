#include "real/proc_stats.hpp"

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <utility>

namespace memvirt {

std::optional<int> proc_find_comm(const std::string& comm, const std::filesystem::path& proc) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(proc, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "comm");
    std::string c;
    if (in && std::getline(in, c) && c == comm) return std::stoi(name);
  }
  return std::nullopt;
}

namespace {

// <proc>/<pid>/schedstat: nanoseconds on a CPU, nanoseconds waiting on a run queue, slices.
std::optional<std::pair<std::uint64_t, std::uint64_t>> schedstat(
    int pid, const std::filesystem::path& proc) {
  std::ifstream in(proc / std::to_string(pid) / "schedstat");
  std::uint64_t run = 0;
  std::uint64_t wait = 0;
  if (!(in >> run >> wait)) return std::nullopt;
  return std::make_pair(run, wait);
}

// User plus system seconds from <proc>/<pid>/stat (fields 14 and 15, in ticks).
std::optional<double> stat_cpu_seconds(int pid, const std::filesystem::path& proc) {
  std::ifstream in(proc / std::to_string(pid) / "stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  // The command name may hold spaces and parentheses: fields restart after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::string field;
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  // After ')': state is field 3; utime is field 14, stime field 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  if (!fields) return std::nullopt;
  const long ticks = sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
}

}  // namespace

std::optional<double> proc_cpu_seconds(int pid, const std::filesystem::path& proc) {
  if (const auto s = schedstat(pid, proc)) return static_cast<double>(s->first) * 1e-9;
  return stat_cpu_seconds(pid, proc);
}

std::optional<double> proc_process_cpu_seconds(int pid, const std::filesystem::path& proc) {
  return stat_cpu_seconds(pid, proc);
}

std::optional<double> proc_wait_seconds(int pid, const std::filesystem::path& proc) {
  const auto s = schedstat(pid, proc);
  if (!s) return std::nullopt;
  return static_cast<double>(s->second) * 1e-9;
}

}  // namespace memvirt
