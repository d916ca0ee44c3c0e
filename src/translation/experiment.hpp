// A translation experiment (seed 004): workloads x MMU configurations, every configuration fed
// the same address stream, plus the linear model evaluated from the same run.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/compose.hpp"
#include "translation/cache.hpp"
#include "translation/guest_layout.hpp"
#include "translation/host_compaction.hpp"
#include "translation/host_layout.hpp"
#include "translation/translator.hpp"
#include "translation/workloads/workload.hpp"

namespace memvirt::translation {

struct ConfigSpec {
  std::string name;
  Mode mode = Mode::kBaseNative;
  PageSize guest_pages = PageSize::k4K;
  PageSize host_pages = PageSize::k4K;
  bool escape_filter = true;
  // Contiguity of this configuration; unset: the scenario's guest/host values.
  std::optional<double> fragmentation;
  std::optional<bool> self_ballooning;
  std::optional<bool> hot_unplug_io_gap;
  std::optional<HostCompactionConfig> compaction;  // host compaction process for this one
};

struct WorkloadSpec {
  std::string name;
  WorkloadFactory make;
  double base_cycles_per_reference = 1;  // run time without translation, per reference
  std::uint64_t guest_memory = 0;        // 0: sized from the footprint
};

struct TranslationScenario {
  std::string file, name, description;
  std::uint64_t seed = 1;
  std::uint64_t references = 0, warmup = 0;
  TranslatorSetup mmu;  // mode and segments filled per configuration
  GuestLayoutConfig guest;
  double guest_memory_per_footprint = 4.0 / 3.0;
  HostLayoutConfig host;
  HostCompactionConfig compaction;  // applies to configurations with a VMM segment
  double cpu_ghz = 2.2;
  std::vector<ConfigSpec> configs;
  std::vector<WorkloadSpec> workloads;
  YAML::Node reference;  // the seed's numbers, copied into the results
  YAML::Node effective;
};

struct ConfigResult {
  const ConfigSpec* spec = nullptr;
  TranslatorStats stats;
  double primary_in_segment = 0;  // share of the primary region the guest segment maps
  std::uint64_t largest_free_run = 0;
  std::uint64_t vmm_segment_bytes = 0;
  std::optional<double> linear_model_cycles;
  // Host compaction (modes with a VMM segment only): the simulated process, and what the
  // translator did while the segment was missing.
  std::optional<HostCompactionStats> compaction;
  std::uint64_t degraded_references = 0;
  std::uint64_t degraded_l1_misses = 0;
  std::uint64_t degraded_walks = 0;
};

struct WorkloadResult {
  std::string name, description;
  double base_cycles_per_reference = 1;
  std::uint64_t footprint = 0;
  std::uint64_t guest_memory = 0;
  std::uint64_t largest_free_run = 0;
  double primary_in_segment = 0;  // share of the primary region inside the guest segment
  std::uint64_t escaped_pages = 0;
  std::vector<ConfigResult> configs;
};

// Reads a scenario (with -p overrides); InputError on bad keys or values.
TranslationScenario load_translation_scenario(const std::string& file,
                                              const std::vector<std::string>& overrides,
                                              const std::vector<OverrideLayer>& layers = {});

// Runs every workload through every configuration. progress(workload index, name) is called
// before each workload.
std::vector<WorkloadResult> run_translation(
    const TranslationScenario& s,
    const std::function<void(std::size_t, const std::string&)>& progress = {});

}  // namespace memvirt::translation
