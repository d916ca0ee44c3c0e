// Helpers shared by the tests.
#pragma once

#include <memory>
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

}  // namespace memvirt::testing
