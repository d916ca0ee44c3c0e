// A scenario file, read once into typed configuration. Every value is declared where it is
// read (Params); unknown keys are errors with their line; the effective configuration, with
// defaults filled in, is kept for writing beside the results.
#pragma once

#include <any>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/compose.hpp"
#include "core/cost.hpp"
#include "core/params.hpp"
#include "core/registry.hpp"
#include "guest/kernel.hpp"
#include "host/content_store.hpp"
#include "host/disk.hpp"
#include "policy/policy.hpp"
#include "reclaim/mechanism.hpp"
#include "workload/workload.hpp"

namespace memvirt {

class Experiment;

// How guest memory is held: QEMU/KVM backs guest pages on first touch; Xen partitions host
// memory between dom0 and paravirtual domains that own their whole reservation.
enum class Hypervisor : std::uint8_t { kKvm, kXen };
inline constexpr std::array<Spelling<Hypervisor>, 2> kHypervisorSpellings{
    {{Hypervisor::kKvm, "kvm"}, {Hypervisor::kXen, "xen"}}};

struct HostConfig {
  Bytes memory;     // physical memory of the host
  Bytes vm_budget;  // memory the VMs may use (density budget)
  ContentBackend content = ContentBackend::kFingerprint;
  bool kill_on_exhaustion = true;  // host OOM killer ends the largest VM when memory runs out
  // Hardware threads the VMs' vCPUs share (a fair-share scheduler); none: a CPU per vCPU.
  std::optional<unsigned> cpus;
  DiskConfig disk;  // the one physical disk the VMs' virtual disks sit on
  Hypervisor hypervisor = Hypervisor::kKvm;
  Bytes dom0_memory{0};  // Xen: dom0's fixed memory
};

struct BootConfig {
  Bytes footprint;         // memory the guest OS touches at boot and keeps
  Bytes transient;         // memory it touches while booting and frees before the workloads
  double shared_fraction;  // share of it identical across VMs booted from the same image
  std::string image;       // image identity (VMs of one image share those pages)
  Duration boot_time;      // time from launch to workloads starting
};

struct VmConfig {
  Bytes memory;      // what the guest gets at launch (Xen: mem=, the initial reservation)
  Bytes max_memory;  // the RAM the guest sees (Xen: maxmem=); memory under KVM
  unsigned vcpus = 1;
  GuestKernelConfig kernel;
  BootConfig boot;
  std::vector<SpecPtr<Workload>> workloads;  // `workloads:`, in order
  Duration launch_interval{};                // time between successive VM launches
  Bytes disk{0};  // virtual disk: the filesystem, then the swap partition; 0: no disk
};

// Invariant checks made at every sample (cheap: accounting; full: every structure).
enum class CheckLevel : std::uint8_t { kNone, kCheap, kFull };
inline constexpr std::array<Spelling<CheckLevel>, 3> kCheckLevelSpellings{
    {{CheckLevel::kNone, "none"}, {CheckLevel::kCheap, "cheap"}, {CheckLevel::kFull, "full"}}};

// How the replicates of an experiment combine into each reported number: their mean, or the
// mean of what is left once the highest and the lowest value are dropped (seed 003's "high
// and low sample of each statistic discarded"), each number separately.
enum class Aggregate : std::uint8_t { kMean, kTrimmedMean };
inline constexpr std::array<Spelling<Aggregate>, 2> kAggregateSpellings{
    {{Aggregate::kMean, "mean"}, {Aggregate::kTrimmedMean, "trimmed_mean"}}};

struct ExperimentConfig {
  SpecPtr<Experiment> spec;  // `type:` and the experiment's own keys (scenario/experiments.hpp)
  Duration duration;
  Duration warmup;  // statistics cover [warmup, duration]
  Duration sample_interval;
  CheckLevel checks = CheckLevel::kCheap;
  // Runs of the experiment, each with its own seed (scenario/replicates.hpp); 1: one run, with
  // the scenario's seed. Fixed experiments only.
  unsigned replicates = 1;
  Aggregate aggregate = Aggregate::kMean;  // trimmed_mean: replicates >= 3
};

// The host's memory policy (`policy:`) and the bounds it may move each guest within.
struct PolicyConfig {
  SpecPtr<Policy> spec;
  Bytes min_memory;  // the least memory a balloon target may leave a guest
  Bytes max_memory;  // the most a guest is given (at most what it booted with)
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
  std::string profile_file;  // the cost profile, as found
  CostProfile costs;
  VmConfig vm;
  std::vector<SpecPtr<Mechanism>> reclaim;  // host mechanisms, in the order given
  std::optional<PolicyConfig> policy;       // none: no controller
  ExperimentConfig experiment;
  Reference reference;
  YAML::Node effective;  // the effective configuration
  // Sections owned by a higher layer (the lab's `lab:`), by key, as their readers made them.
  std::map<std::string, std::any> extensions;
  YAML::Node source;  // the composed tree (bases, the file, -p overrides), with line marks
  std::shared_ptr<const ParamContext> params;

  // Where a dotted field path ("reclaim[1].order") is in the file, so checks made after
  // loading (the lab's) point at the line; the nearest enclosing key when it is absent.
  [[nodiscard]] SourcePlace place_of(const std::string& path) const;

  // The section `key` as its extension read it; nullptr when the scenario was loaded without
  // that extension. Throws std::bad_any_cast when T is not what the reader made.
  template <typename T>
  [[nodiscard]] const T* extension(const std::string& key) const {
    const auto it = extensions.find(key);
    return it == extensions.end() ? nullptr : &std::any_cast<const T&>(it->second);
  }
};

// A top-level section that a layer above the scenario owns (the lab's `lab:`). Its reader
// declares the section's parameters like every other reader, so one file drives every
// backend and a misspelt key is an error on any of them.
struct ScenarioExtension {
  std::string key;
  std::function<std::any(Params)> read;
};

// Reads `file` with `layers` and "key.path=value" overrides on top (compose_file) and the given
// extensions' sections. Throws InputError naming file, line and field for anything wrong, a
// section no extension reads included.
Scenario load_scenario(const std::string& file, const std::vector<std::string>& overrides = {},
                       const std::vector<ScenarioExtension>& extensions = {},
                       const std::vector<OverrideLayer>& layers = {});

}  // namespace memvirt
