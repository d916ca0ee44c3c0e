#include "workload/memhog.hpp"

namespace memvirt {

Memhog::Config Memhog::config_from(Params& p) {
  Config c;
  c.chunk_pages = read_touch_chunk(p);
  c.size = p.required_bytes("size", "amount to allocate and touch");
  if (c.size.pages() == 0) p.fail("size", "must be at least one page");
  c.start = p.duration("start", Duration{0}, "delay after boot");
  c.hold = p.duration("hold", Duration{0}, "time the memory is kept after touching");
  c.repeat = p.integer("repeat", 1, "number of runs", 1, 1'000'000);
  c.interval = p.duration("interval", Duration{0}, "time from one run's start to the next");
  c.exit_after =
      p.option("then", true, std::array<Spelling<bool>, 2>{{{true, "exit"}, {false, "free"}}},
               "exit the process, or munmap and stay");
  c.thp = p.boolean("thp", false, "map with madvise(MADV_HUGEPAGE): 2 MiB faults");
  if (p.has("content")) {
    c.content = p.option("content", ContentClass::kOpaque, kContentClassSpellings,
                         "content class of the pages written (default opaque: random bytes)");
  }
  return c;
}

}  // namespace memvirt
