// Helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "core/cost.hpp"
#include "guest/kernel.hpp"
#include "host/host_memory.hpp"

namespace memvirt::testing {

// A profile with round, known costs so tests can assert charged CPU time exactly.
inline CostProfile unit_costs() {
  CostProfile p;
  p.set_machine("test", 1.0);
  for (std::size_t i = 0; i < static_cast<std::size_t>(Op::kCount); ++i) {
    p.set(static_cast<Op>(i), 100.0 * static_cast<double>(i + 1), "test");
  }
  return p;
}

// A host with one guest of `guest_bytes`, wired together.
struct GuestFixture {
  explicit GuestFixture(Bytes guest_bytes, bool bytes_backend = false, unsigned vcpus = 1)
      : costs(unit_costs()),
        host(bytes_backend ? std::unique_ptr<ContentStore>(
                                 std::make_unique<BytesStore>(guest_bytes.pages() * 2))
                           : std::unique_ptr<ContentStore>(std::make_unique<FingerprintStore>())),
        vcpu("vcpu", vcpus),
        faults("faults", 1) {
    GuestKernelConfig cfg;
    cfg.memory = guest_bytes;
    cfg.vcpus = vcpus;
    vm = host.add_vm(guest_bytes);
    kernel = std::make_unique<GuestKernel>(cfg, host, vm, costs, vcpu, faults);
  }
  CostProfile costs;
  HostMemory host;
  CostAccount vcpu;
  CostAccount faults;
  VmId vm;
  std::unique_ptr<GuestKernel> kernel;
};

// Path of a file in the source tree.
inline std::string source_path(const std::string& rel) {
  return std::string(MEMVIRT_SOURCE_DIR) + "/" + rel;
}

// A fresh folder for the running test.
inline std::filesystem::path temp_dir() {
  const auto d = std::filesystem::temp_directory_path() /
                 ("memvirt_test_" + std::to_string(::getpid()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(d);
  return d;
}

inline std::string whole_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
  return p.string();
}

// Scenario text whose `calibration: profiles/default.yaml` points into the source tree, so
// it loads from any folder.
inline std::string with_source_profile(std::string text) {
  const std::string rel = "calibration: profiles/default.yaml";
  if (const auto at = text.find(rel); at != std::string::npos) {
    text.replace(at, rel.size(), "calibration: " + source_path("profiles/default.yaml"));
  }
  return text;
}

// A scenario named `name` of `vms` VMs of 512 MiB whose program's amounts are drawn from the
// seed, for 20 simulated minutes sampled every `sample_interval`: a run takes a fraction of a
// second, and different seeds give different numbers. Its calibration is in the source tree.
inline std::string drawn_scenario_text(const std::string& name, unsigned vms,
                                       const std::string& sample_interval) {
  return with_source_profile("name: " + name + R"(
seed: 3
calibration: profiles/default.yaml
host:
  memory: 8GiB
vm:
  memory: 512MiB
  boot: {footprint: 32MiB, shared_fraction: 0.5}
  workloads:
    - type: periodic_alloc
      period: 10min
      amount: {dist: uniform, min: 64MiB, max: 256MiB}
      mean_in_use: 32MiB
experiment:
  type: fixed
  vms: )" + std::to_string(vms) +
                             R"(
  duration: 20min
  warmup: 10min
  sample_interval: )" + sample_interval +
                             "\n");
}

}  // namespace memvirt::testing
