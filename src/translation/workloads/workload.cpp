#include "translation/workloads/workload.hpp"

#include <utility>

namespace memvirt::translation {

WorkloadFactory make_workload(Params p, std::uint64_t seed) {
  using Maker = WorkloadFactory (*)(Params&, std::uint64_t);
  // One line per address-stream workload; `type` must name one of them.
  static constexpr std::pair<const char*, Maker> kMakers[] = {{"gups", make_gups},
                                                              {"graph500", make_graph500},
                                                              {"memcached", make_memcached},
                                                              {"npb_cg", make_npb_cg},
                                                              {"trace", make_trace_replay}};
  std::vector<std::string> names;
  for (const auto& [name, make] : kMakers) names.emplace_back(name);
  const std::string type = p.choice("type", "gups", names, "address-stream workload");
  for (const auto& [name, make] : kMakers) {
    if (type == name) return make(p, seed);
  }
  p.fail("type", "no such workload");  // not reached: choice() accepts only the names above
}

}  // namespace memvirt::translation
