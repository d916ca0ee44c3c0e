#include "reclaim/discard.hpp"

namespace memvirt {

CpuTime host_discard(HostMemory& host, const CostProfile& costs, VmId vm, Gfn gfn,
                     std::uint32_t pages, DiscardMode mode) {
  for (std::uint32_t i = 0; i < pages; ++i) {
    const Gfn g{gfn.value() + i};
    if (mode == DiscardMode::kDontNeed) {
      host.discard(vm, g);
    } else {
      host.lazy_free(vm, g);
    }
  }
  // A single page costs a whole call; a large range costs a per-page share of one.
  return pages == 1 ? costs.cost(Op::kMadviseDontneedSingle)
                    : costs.cost(Op::kMadviseDontneedBatched) * pages;
}

}  // namespace memvirt
