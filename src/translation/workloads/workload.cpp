#include "translation/workloads/workload.hpp"

namespace memvirt::translation {

WorkloadFactory make_workload(Params p, std::uint64_t seed) {
  const std::string type =
      p.choice("type", "gups", {"gups", "graph500", "memcached", "npb_cg", "trace"},
               "address-stream workload");
  if (type == "gups") return make_gups(p, seed);
  if (type == "graph500") return make_graph500(p, seed);
  if (type == "memcached") return make_memcached(p, seed);
  if (type == "npb_cg") return make_npb_cg(p, seed);
  return make_trace_replay(p, seed);
}

}  // namespace memvirt::translation
