#include "real/proc_stats.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
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

namespace {

// The whole file; nullopt when it does not exist. Throws naming the file on other errors.
std::optional<std::string> slurp_if_exists(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) {
    const int err = errno;
    if (err == ENOENT || err == ESRCH) return std::nullopt;
    throw std::runtime_error("cannot read " + file.string() + ": " + std::strerror(err));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string slurp(const std::filesystem::path& file) {
  std::optional<std::string> text = slurp_if_exists(file);
  if (!text) throw std::runtime_error("cannot read " + file.string() + ": no such file");
  return *text;
}

// "  16318712 kB" after a "Name:" key, as bytes; nullopt when it is not that.
std::optional<Bytes> kib_value(std::string_view rest) {
  const auto start = rest.find_first_not_of(" \t");
  if (start == std::string_view::npos) return std::nullopt;
  rest.remove_prefix(start);
  std::uint64_t kib = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), kib);
  if (ec != std::errc() || kib > (UINT64_MAX >> 10)) return std::nullopt;
  std::string_view unit(end, static_cast<std::size_t>(rest.data() + rest.size() - end));
  while (!unit.empty() && (unit.back() == ' ' || unit.back() == '\r')) unit.remove_suffix(1);
  if (unit != " kB") return std::nullopt;
  return Bytes{kib << 10};
}

// The value of the line that starts with `key` ("MemTotal:"): absent, or malformed (throws).
std::optional<Bytes> kib_field(const std::string& text, std::string_view key,
                               const std::string& file) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const std::optional<Bytes> v = kib_value(std::string_view(line).substr(key.size()));
    if (!v) {
      throw std::runtime_error(file + ": " + std::string(key.substr(0, key.size() - 1)) +
                               " is not a number of kB: '" + line + "'");
    }
    return v;
  }
  return std::nullopt;
}

}  // namespace

ProcMeminfo parse_meminfo(const std::string& text, const std::string& file) {
  auto need = [&](std::string_view key) {
    const std::optional<Bytes> v = kib_field(text, key, file);
    if (!v) {
      throw std::runtime_error(file + ": no " + std::string(key.substr(0, key.size() - 1)) +
                               " line");
    }
    return *v;
  };
  ProcMeminfo m;
  m.total = need("MemTotal:");
  m.free = need("MemFree:");
  m.buffers = need("Buffers:");
  m.cached = need("Cached:");
  if (m.total.value() == 0) throw std::runtime_error(file + ": MemTotal is 0");
  if (m.free > m.total) throw std::runtime_error(file + ": MemFree is more than MemTotal");
  m.available = kib_field(text, "MemAvailable:", file);
  if (m.available && *m.available > m.total) {
    throw std::runtime_error(file + ": MemAvailable is more than MemTotal");
  }
  return m;
}

ProcMeminfo proc_meminfo(const std::filesystem::path& proc) {
  const std::filesystem::path file = proc / "meminfo";
  return parse_meminfo(slurp(file), file.string());
}

Duration parse_pressure_some_total(const std::string& text, const std::string& file) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("some ", 0) != 0) continue;
    const auto at = line.find(" total=");
    if (at == std::string::npos) throw std::runtime_error(file + ": 'some' line has no total");
    const std::string_view v = std::string_view(line).substr(at + 7);
    std::int64_t us = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), us);
    if (ec != std::errc() || us < 0 || us > INT64_MAX / 1000 ||
        (end != v.data() + v.size() && *end != ' ' && *end != '\r')) {
      throw std::runtime_error(file + ": 'some' total is not a number of microseconds: '" + line +
                               "'");
    }
    return Duration{us * 1000};
  }
  throw std::runtime_error(file + ": no 'some' line");
}

std::optional<Duration> proc_memory_pressure(const std::filesystem::path& proc) {
  const std::filesystem::path file = proc / "pressure" / "memory";
  const std::optional<std::string> text = slurp_if_exists(file);
  if (!text) return std::nullopt;
  return parse_pressure_some_total(*text, file.string());
}

std::optional<Bytes> parse_status_vm_rss(const std::string& text, const std::string& file) {
  return kib_field(text, "VmRSS:", file);
}

std::optional<Bytes> proc_vm_rss(int pid, const std::filesystem::path& proc) {
  const std::filesystem::path file = proc / std::to_string(pid) / "status";
  const std::optional<std::string> text = slurp_if_exists(file);
  if (!text) return std::nullopt;
  return parse_status_vm_rss(*text, file.string());
}

}  // namespace memvirt
