// The guest's own view of its memory, every `interval`: one marker with /proc/meminfo's
// totals and page cache, /proc/vmstat's fault and refault counters, the virtual disk's
// sectors (/sys/block/vda/stat, when the guest has a disk) and the CPU time of /proc/stat.
// The host fills the guest columns of the time series from these, and takes a silence of the
// sampler as a sign that the guest hangs.
//
// With zswap=1, a second marker, "zswap", follows each meminfo one: every counter of
// /sys/kernel/debug/zswap/ (stored_pages, pool_total_size, same_filled_pages,
// written_back_pages, pool_limit_hit, reject_*, duplicate_entry) by its file's name, and the
// peaks of stored_pages and pool_total_size since the sampler started (stored_pages_max,
// pool_total_size_max), which it reads ten times per interval.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "marker.hpp"
#include "programs.hpp"

namespace guest {
namespace {

struct Field {
  const char* name;  // as the file spells it, with the separator that follows
  const char* key;   // the marker's key
};

// Appends " key=value" for each field found at the start of a line of `path`, the value
// multiplied by `scale` (KiB to bytes for meminfo).
void read_fields(const char* path, const Field* fields, std::size_t n, std::uint64_t scale,
                 std::string& out) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return;
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t len = std::strlen(fields[i].name);
      if (std::strncmp(line, fields[i].name, len) != 0) continue;
      unsigned long long v = 0;
      if (std::sscanf(line + len, "%llu", &v) == 1) {
        out +=
            std::string(out.empty() ? "" : " ") + fields[i].key + "=" + std::to_string(v * scale);
      }
    }
  }
  std::fclose(f);
}

// /sys/block/vda/stat: sectors read are the 3rd field, sectors written the 7th.
void read_disk(std::string& out) {
  FILE* f = std::fopen("/sys/block/vda/stat", "r");
  if (f == nullptr) return;
  unsigned long long v[7] = {};
  if (std::fscanf(f, "%llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &v[6]) == 7) {
    out += " rd_sectors=" + std::to_string(v[2]) + " wr_sectors=" + std::to_string(v[6]);
  }
  std::fclose(f);
}

// /proc/stat's "cpu" line, summed over the vCPUs, in milliseconds: busy is all but idle and
// iowait (a vCPU waiting for the disk is idle to the host).
void read_cpu(std::string& out) {
  FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return;
  unsigned long long t[8] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &t[0], &t[1], &t[2],
                            &t[3], &t[4], &t[5], &t[6], &t[7]);
  std::fclose(f);
  if (n < 5) return;
  unsigned long long total = 0;
  for (const unsigned long long x : t) total += x;
  const unsigned long long idle = t[3] + t[4];
  const long hz = sysconf(_SC_CLK_TCK);
  const unsigned long long per_s = hz > 0 ? static_cast<unsigned long long>(hz) : 100;
  out += " cpu_busy_ms=" + std::to_string((total - idle) * 1000 / per_s) +
         " cpu_total_ms=" + std::to_string(total * 1000 / per_s);
}

constexpr const char* kZswapDir = "/sys/kernel/debug/zswap";

// One number from a debugfs or sysfs file; false when unreadable.
bool read_number(const std::string& path, unsigned long long& v) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return false;
  const bool ok = std::fscanf(f, "%llu", &v) == 1;
  std::fclose(f);
  return ok;
}

// zswap's debugfs counters and their peaks.
class ZswapSampler {
 public:
  explicit ZswapSampler(const std::string& tag) : tag_(tag) {
    DIR* d = opendir(kZswapDir);
    if (d == nullptr) {
      fail(tag, std::string("no ") + kZswapDir +
                    " (debugfs not mounted, or a guest kernel without zswap)");
    }
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names_.emplace_back(e->d_name);
    }
    closedir(d);
    std::sort(names_.begin(), names_.end());
  }
  // Reads the two gauges and keeps their peaks.
  void peek() {
    unsigned long long v = 0;
    if (read_number(std::string(kZswapDir) + "/stored_pages", v))
      stored_max_ = std::max(stored_max_, v);
    if (read_number(std::string(kZswapDir) + "/pool_total_size", v))
      pool_max_ = std::max(pool_max_, v);
  }
  // Every counter, then the peaks.
  std::string fields() {
    peek();
    std::string out;
    for (const std::string& n : names_) {
      unsigned long long v = 0;
      if (!read_number(std::string(kZswapDir) + "/" + n, v)) {
        fail(tag_, std::string("cannot read ") + kZswapDir + "/" + n);
      }
      out += (out.empty() ? "" : " ") + n + "=" + std::to_string(v);
    }
    out += " stored_pages_max=" + std::to_string(stored_max_) +
           " pool_total_size_max=" + std::to_string(pool_max_);
    return out;
  }

 private:
  std::string tag_;
  std::vector<std::string> names_;
  unsigned long long stored_max_ = 0, pool_max_ = 0;
};

}  // namespace

int meminfo_main(Args& a) {
  const std::string tag = a.tag();
  const std::uint64_t interval = a.number("interval");
  const bool zswap = a.number("zswap", 0) != 0;
  a.check_all_read();
  if (interval == 0) fail(tag, "interval must be positive");
  std::optional<ZswapSampler> z;
  if (zswap) z.emplace(tag);
  constexpr std::uint64_t kPeeks = 10;
  const Field meminfo[] = {{"MemTotal:", "total"},
                           {"MemFree:", "free"},
                           {"MemAvailable:", "avail"},
                           {"Committed_AS:", "committed"},
                           {"AnonPages:", "anon"},
                           {"Cached:", "cached"},
                           {"AnonHugePages:", "anon_thp"},
                           {"Dirty:", "dirty"},
                           {"Writeback:", "writeback"},
                           {"Active(file):", "active_file"},
                           {"Inactive(file):", "inactive_file"},
                           {"Active(anon):", "active_anon"},
                           {"Inactive(anon):", "inactive_anon"},
                           {"Shmem:", "shmem"},
                           {"SwapTotal:", "swap_total"},
                           {"SwapFree:", "swap_free"}};
  const Field vmstat[] = {{"pgmajfault ", "majflt"},
                          {"workingset_refault_file ", "refault_file"},
                          {"pswpin ", "pswpin"},
                          {"pswpout ", "pswpout"}};
  for (std::uint64_t next = now_ns();; next += interval) {
    if (z) {
      // The peaks between two samples.
      for (std::uint64_t i = 1; i < kPeeks; ++i) {
        sleep_until(next - interval + interval * i / kPeeks);
        z->peek();
      }
    }
    sleep_until(next);
    std::string out;
    read_fields("/proc/meminfo", meminfo, sizeof meminfo / sizeof meminfo[0], 1024, out);
    read_fields("/proc/vmstat", vmstat, sizeof vmstat / sizeof vmstat[0], 1, out);
    read_disk(out);
    read_cpu(out);
    marker(tag, "meminfo", out);
    if (z) marker(tag, "zswap", z->fields());
  }
}

}  // namespace guest
