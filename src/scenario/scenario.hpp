// A scenario file, read once into typed configuration. Every value is declared where it is
// read (Params); unknown keys are errors with their line; the effective configuration, with
// defaults filled in, is kept for writing beside the results.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/cost.hpp"
#include "core/params.hpp"
#include "guest/kernel.hpp"
#include "lab/lab_config.hpp"
#include "reclaim/mechanism.hpp"
#include "workload/workload.hpp"

namespace memvirt {

struct HostConfig {
  Bytes memory;                    // physical memory of the host
  Bytes vm_budget;                 // memory the VMs may use (density budget)
  std::string content;             // "fingerprint" or "bytes"
  bool kill_on_exhaustion = true;  // host OOM killer ends the largest VM when memory runs out
};

struct BootConfig {
  Bytes footprint;         // memory the guest OS touches at boot and keeps
  Bytes transient;         // memory it touches while booting and frees before the workloads
  double shared_fraction;  // share of it identical across VMs booted from the same image
  std::string image;       // image identity (VMs of one image share those pages)
  Duration boot_time;      // time from launch to workloads starting
};

struct VmConfig {
  Bytes memory;
  unsigned vcpus = 1;
  GuestKernelConfig kernel;
  BootConfig boot;
  std::vector<WorkloadFactory> workloads;
  Duration launch_interval{};  // time between successive VM launches
};

struct ExperimentConfig {
  std::string type;  // "density" or "fixed"
  Duration duration;
  Duration warmup;  // statistics cover [warmup, duration]
  Duration sample_interval;
  unsigned vms = 1;         // fixed: number of VMs; density: first count tried (0: derived)
  unsigned max_vms = 4096;  // density: upper bound of the search
  std::string checks;       // "none", "cheap", "full": invariant checks during the run
};

struct Reference {
  std::optional<double> vms;
  std::optional<double> host_memory_gib_avg;
  std::string source;
};

struct Scenario {
  std::string file;
  std::string name;
  std::string description;
  std::uint64_t seed = 1;
  HostConfig host;
  std::string profile_file;
  CostProfile costs;
  VmConfig vm;
  std::vector<MechanismFactory> reclaim;  // host mechanisms, in the order given
  std::vector<std::string> reclaim_names;
  ExperimentConfig experiment;
  Reference reference;
  YAML::Node effective;  // the effective configuration
  LabConfig lab;         // the real lab's settings (`lab:`); the simulator ignores them
  YAML::Node source;     // the composed tree (bases, the file, -p overrides), with line marks
  std::shared_ptr<const ParamContext> params;

  // Where a dotted field path ("reclaim[1].order") is in the file, so checks made after
  // loading (the lab's) point at the line; the nearest enclosing key when it is absent.
  [[nodiscard]] SourcePlace place_of(const std::string& path) const;
};

// Reads `file` with "key.path=value" overrides. Throws InputError naming file, line and
// field for anything wrong.
Scenario load_scenario(const std::string& file, const std::vector<std::string>& overrides = {});

}  // namespace memvirt
