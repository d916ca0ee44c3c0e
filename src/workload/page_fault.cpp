#include "workload/page_fault.hpp"

namespace memvirt {

PageFault::Config PageFault::config_from(Params& p, bool file_backed) {
  Config c;
  read_touch_chunk(p);  // read like every workload's, so the key is valid on all of them
  c.file_backed = file_backed;
  c.tasks =
      static_cast<unsigned>(p.integer("tasks", 1, "processes, each on its own vCPU", 1, 4096));
  c.thp = p.boolean("thp", false, "page_fault1 with madvise(MADV_HUGEPAGE) (seed 002)");
  if (c.thp && c.file_backed) p.fail("thp", "page_fault2 maps a file: no transparent huge pages");
  c.size = p.bytes("size", c.size, "MEMSIZE: memory each task maps per iteration");
  if (c.size.pages() == 0) p.fail("size", "must be at least one page");
  c.start = p.duration("start", Duration{0}, "delay after boot");
  c.duration = p.duration("duration", c.duration, "time over which operations are counted");
  if (c.duration.ns() <= 0) p.fail("duration", "must be positive");
  return c;
}

}  // namespace memvirt
