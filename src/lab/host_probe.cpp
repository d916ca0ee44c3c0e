#include "lab/host_probe.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace memvirt {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::uint64_t read_number(const std::string& path) {
  std::ifstream in(path);
  std::int64_t v = 0;
  in >> v;
  return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

}  // namespace

std::optional<MappingUsage> find_guest_ram(const std::string& smaps, Bytes guest_memory) {
  std::optional<MappingUsage> best;
  MappingUsage cur;
  bool candidate = false;
  auto finish = [&] {
    if (candidate && cur.size >= guest_memory.value() && (!best || cur.size < best->size)) {
      best = cur;
    }
  };
  std::istringstream in(smaps);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && is_hex(line[0]) && line.find('-') != std::string::npos &&
        line.find(':') > line.find(' ')) {
      // A mapping header: "start-end perms offset dev inode [path]".
      finish();
      cur = MappingUsage{};
      std::istringstream h(line);
      std::string range, perms, offset, dev, inode, path;
      h >> range >> perms >> offset >> dev >> inode;
      std::getline(h, path);
      path.erase(0, path.find_first_not_of(' '));
      candidate = inode == "0" && path.empty() && perms.rfind("rw", 0) == 0;
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    std::uint64_t kib = 0;
    std::istringstream v(line.substr(colon + 1));
    v >> kib;
    const std::uint64_t bytes = kib * 1024;
    if (key == "Size") {
      cur.size = bytes;
    } else if (key == "Rss") {
      cur.rss = bytes;
    } else if (key == "Pss") {
      cur.pss = bytes;
    } else if (key == "Private_Clean" || key == "Private_Dirty") {
      cur.private_bytes += bytes;
    } else if (key == "AnonHugePages") {
      cur.anon_huge = bytes;
    }
  }
  finish();
  return best;
}

std::optional<MappingUsage> guest_ram_usage(pid_t pid, Bytes guest_memory) {
  const std::string smaps = slurp(fmt::format("/proc/{}/smaps", pid));
  if (smaps.empty()) return std::nullopt;
  return find_guest_ram(smaps, guest_memory);
}

std::uint64_t process_rss_bytes(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/statm", pid));
  std::uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

KsmCounters read_ksm_counters(const std::string& dir) {
  KsmCounters k;
  k.pages_shared = read_number(dir + "/pages_shared");
  k.pages_sharing = read_number(dir + "/pages_sharing");
  k.pages_unshared = read_number(dir + "/pages_unshared");
  k.pages_volatile = read_number(dir + "/pages_volatile");
  k.full_scans = read_number(dir + "/full_scans");
  k.ksm_zero_pages = read_number(dir + "/ksm_zero_pages");
  k.pages_scanned = read_number(dir + "/pages_scanned");  // Linux 6.7 and later
  std::ifstream in(dir + "/general_profit");
  in >> k.general_profit;
  return k;
}

}  // namespace memvirt
