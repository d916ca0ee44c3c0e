// Replays a memory-usage trace as the simulator does: at each row, grow (map and touch the
// difference) or shrink (unmap the newest memory first) to the row's amount. The host passes
// the trace as a file of "time_ns bytes" rows.
#include <sys/mman.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "marker.hpp"
#include "programs.hpp"
#include "touch.hpp"

namespace guest {

int trace_main(Args& a) {
  const std::string tag = a.tag();
  const std::string file = a.text("file");
  const bool loop = a.number("loop", 0) != 0;
  const std::uint64_t phase = a.number("phase", 0);
  const std::uint64_t seed = a.number("seed", 0);
  a.check_all_read();

  std::vector<std::pair<std::uint64_t, std::uint64_t>> rows;
  if (FILE* f = std::fopen(file.c_str(), "r")) {
    unsigned long long t = 0, b = 0;
    while (std::fscanf(f, "%llu %llu", &t, &b) == 2) rows.emplace_back(t, b / kPage * kPage);
    std::fclose(f);
  }
  if (rows.empty()) fail(tag, "no rows in " + file);

  Stamps stamps(seed, 0);
  std::vector<std::pair<char*, std::uint64_t>> regions;  // newest last
  std::uint64_t in_use = 0;
  std::uint64_t origin = now_ns() + phase;
  for (std::uint64_t cycle = 0;; ++cycle) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      sleep_until(origin + rows[i].first);
      const std::uint64_t target = rows[i].second;
      if (target > in_use) {
        const std::uint64_t grow = target - in_use;
        void* p = map_anonymous(grow);
        if (p == nullptr) fail(tag, "mmap failed");
        touch_unique(p, grow, stamps);
        regions.emplace_back(static_cast<char*>(p), grow);
        in_use = target;
      }
      while (in_use > target) {
        auto& [p, len] = regions.back();
        const std::uint64_t cut = std::min(len, in_use - target);
        keep(p);
        munmap(p + (len - cut), cut);
        len -= cut;
        in_use -= cut;
        if (len == 0) regions.pop_back();
      }
      marker(tag, "row",
             "cycle=" + std::to_string(cycle) + " row=" + std::to_string(i) +
                 " bytes=" + std::to_string(in_use));
    }
    if (!loop) break;
    origin += rows.back().first;
  }
  marker(tag, "done");
  return 0;
}

}  // namespace guest
