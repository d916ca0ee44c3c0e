// One tick of each host policy over a fleet of seed 000's size (516 guests of 4 GiB on a
// 2 TiB host), each guest with a stats report and a pressure total: the decision's own cost,
// which the simulator pays every sample_interval of virtual time (the observation it builds
// comes on top). Guests alternate between calm and stalled so every branch runs.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "policy/policy.hpp"

namespace memvirt {
namespace {

HostObservation fleet(unsigned guests, std::int64_t tick) {
  HostObservation h;
  h.since_start = Duration::seconds(tick);
  h.total = Bytes{2048ULL << 30};
  h.free = Bytes{300ULL << 30};
  h.ksm = KsmObservation{true, 100, Duration::millis(20)};
  for (unsigned i = 0; i < guests; ++i) {
    GuestObservation g;
    g.key = i;
    g.name = "vm" + std::to_string(i);
    g.memory = g.max = g.actual = g.target = g.resident = Bytes{4ULL << 30};
    g.min = Bytes{512ULL << 20};
    GuestMemoryStats s;
    s.total = g.actual;
    s.free = s.available = Bytes{(1ULL + i % 3) << 30};
    g.stats = s;
    g.committed = Bytes{1ULL << 30};
    g.memory_stall = Duration::millis(tick * ((i + tick) % 2 == 0 ? 0 : 20));
    h.guests.push_back(std::move(g));
  }
  return h;
}

void BM_PolicyTick(benchmark::State& state, const std::string& impl) {
  const PolicyRegistry registry = make_policy_registry();
  YAML::Node node;
  node["impl"] = impl;
  node["min_memory"] = "512MiB";
  auto ctx = std::make_shared<ParamContext>("bench.yaml");
  Params p(node, "policy", ctx);
  const std::unique_ptr<Policy> policy = registry.parse(p)->make();
  std::int64_t tick = 0;
  std::vector<HostObservation> ticks;
  for (int t = 0; t < 16; ++t) ticks.push_back(fleet(516, t));
  for (auto _ : state) {
    benchmark::DoNotOptimize(policy->tick(ticks[static_cast<std::size_t>(tick++ % 16)]));
  }
  state.SetItemsProcessed(state.iterations() * 516);
}

BENCHMARK_CAPTURE(BM_PolicyTick, dmc, std::string("dmc"));
BENCHMARK_CAPTURE(BM_PolicyTick, mom, std::string("mom"));
BENCHMARK_CAPTURE(BM_PolicyTick, ksmtuned, std::string("ksmtuned"));
BENCHMARK_CAPTURE(BM_PolicyTick, dynamic_memory, std::string("dynamic_memory"));
BENCHMARK_CAPTURE(BM_PolicyTick, senpai, std::string("senpai"));
BENCHMARK_CAPTURE(BM_PolicyTick, memvirt, std::string("memvirt"));

}  // namespace
}  // namespace memvirt
