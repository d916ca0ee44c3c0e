#include "workload/file_reader.hpp"
#include "workload/kernel_build.hpp"
#include "workload/memhog.hpp"
#include "workload/page_fault.hpp"
#include "workload/periodic_alloc.hpp"
#include "workload/trace_replay.hpp"
#include "workload/workload.hpp"

namespace memvirt {

WorkloadRegistry make_workload_registry() {
  WorkloadRegistry r("workload kind", "type");
  r.add<PeriodicAlloc>("periodic_alloc");
  r.add<Memhog>("memhog");
  r.add<FileReader>("file_reader");
  r.add<KernelBuild>("kernel_build");
  r.add<TraceReplay>("trace");
  r.add<PageFault>("page_fault1", [](Params& p) { return PageFault::config_from(p, false); });
  r.add<PageFault>("page_fault2", [](Params& p) { return PageFault::config_from(p, true); });
  return r;
}

std::uint64_t read_touch_chunk(Params& p) {
  const Bytes chunk = p.bytes("touch_chunk", Bytes{64ULL << 20},
                              "pages touched per event (granularity of virtual time)");
  if (chunk.pages() == 0) p.fail("touch_chunk", "must be at least one page");
  return chunk.pages();
}

}  // namespace memvirt
