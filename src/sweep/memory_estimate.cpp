#include "sweep/memory_estimate.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "scenario/experiments.hpp"

namespace memvirt::sweep {
namespace {

// Measured bytes of simulator memory per guest page (memory_estimate.hpp says where).
constexpr double kBytesPerPage = 13.1;
constexpr double kBytesPerPageWithDisk = 24.0;
constexpr std::uint64_t kProcessBytes = 64ULL << 20;

struct Guests {
  unsigned count = 0;
  std::string why;
};

std::optional<Guests> guests_at_once(const Scenario& s) {
  const auto& spec = *s.experiment.spec;
  if (const VmCounts* c = spec.as<FixedExperiment>()) {
    return Guests{c->vms, fmt::format("fixed, {} VMs", c->vms)};
  }
  if (const VmCounts* c = spec.as<LaunchExperiment>()) {
    return Guests{c->max_vms, fmt::format("launch, up to {} VMs", c->max_vms)};
  }
  if (const VmCounts* c = spec.as<DensityExperiment>()) {
    // The first count as DensityExperiment::run derives it.
    unsigned first = c->vms;
    if (first == 0) {
      first = std::max<unsigned>(
          1, static_cast<unsigned>(s.host.vm_budget.value() / s.vm.memory.value()));
    }
    first = std::min(first, c->max_vms);
    const unsigned largest = std::min(c->max_vms, 2 * first);
    return Guests{largest, fmt::format("density, trials up to {} VMs", largest)};
  }
  if (const CarryConfig* c = spec.as<CarryExperiment>()) {
    // Its doubling may reach max_vms, and each trial's unconstrained run holds every guest.
    return Guests{c->counts.max_vms, fmt::format("carry, trials up to {} VMs", c->counts.max_vms)};
  }
  return std::nullopt;
}

}  // namespace

MemoryEstimate estimate_memory(const Scenario& s) {
  const std::optional<Guests> g = guests_at_once(s);
  if (!g) {
    return MemoryEstimate{std::nullopt, fmt::format("no estimate for '{}' experiments: runs alone",
                                                    s.experiment.spec->name())};
  }
  const bool disk = s.vm.disk.value() > 0;
  const double per_page = disk ? kBytesPerPageWithDisk : kBytesPerPage;
  const double pages = static_cast<double>(s.vm.max_memory.pages()) * g->count;
  const auto bytes = kProcessBytes + static_cast<std::uint64_t>(pages * per_page);
  return MemoryEstimate{bytes, fmt::format("{}, {} guest pages at {} bytes", g->why,
                                           static_cast<std::uint64_t>(pages), per_page)};
}

MemoryEstimate estimate_memory(const translation::TranslationScenario& /*s*/) {
  return MemoryEstimate{std::nullopt,
                        "translation: its workloads' data, known once built: runs alone"};
}

}  // namespace memvirt::sweep
