// The guest's own view of its memory, every `interval`: /proc/meminfo's totals as a marker.
// The host fills the guest columns of the time series from these, and takes a silence of the
// sampler as a sign that the guest hangs.
#include <cstdio>
#include <cstring>
#include <string>

#include "marker.hpp"
#include "programs.hpp"

namespace guest {

int meminfo_main(Args& a) {
  const std::string tag = a.tag();
  const std::uint64_t interval = a.number("interval");
  a.check_all_read();
  if (interval == 0) fail(tag, "interval must be positive");
  struct Field {
    const char* name;
    const char* key;
  };
  const Field fields[] = {{"MemTotal:", "total"},        {"MemFree:", "free"},
                          {"MemAvailable:", "avail"},    {"Committed_AS:", "committed"},
                          {"AnonPages:", "anon"},        {"Cached:", "cached"},
                          {"AnonHugePages:", "anon_thp"}};
  for (std::uint64_t next = now_ns();; next += interval) {
    sleep_until(next);
    std::string out;
    if (FILE* f = std::fopen("/proc/meminfo", "r")) {
      char line[256];
      while (std::fgets(line, sizeof line, f) != nullptr) {
        for (const Field& fl : fields) {
          const std::size_t n = std::strlen(fl.name);
          if (std::strncmp(line, fl.name, n) != 0) continue;
          unsigned long long kib = 0;
          if (std::sscanf(line + n, "%llu", &kib) == 1) {
            out += std::string(out.empty() ? "" : " ") + fl.key + "=" + std::to_string(kib * 1024);
          }
        }
      }
      std::fclose(f);
    }
    marker(tag, "meminfo", out);
  }
}

}  // namespace guest
