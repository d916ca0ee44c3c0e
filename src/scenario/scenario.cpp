#include "scenario/scenario.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "core/compose.hpp"
#include "reclaim/balloon.hpp"
#include "reclaim/ksm.hpp"
#include "reclaim/selfballoon.hpp"
#include "reclaim/tmem_frontends.hpp"
#include "scenario/experiments.hpp"
#include "workload/file_reader.hpp"
#include "workload/kernel_build.hpp"

namespace memvirt {
namespace {

template <typename Impl>
const typename Impl::Config* mechanism_config(const Scenario& s) {
  for (const auto& m : s.reclaim) {
    if (const auto* c = m->as<Impl>()) return c;
  }
  return nullptr;
}

// `policy:`: the controller and the bounds of its balloon targets. What the policy needs
// must be in the scenario's mechanisms; the error says which.
PolicyConfig read_policy(Params p, const Scenario& s) {
  PolicyConfig c;
  c.spec = make_policy_registry().parse(p);
  const PolicyInputs needs = c.spec->make()->needs();
  const auto* balloon = mechanism_config<Balloon>(s);
  if (needs.balloon && balloon == nullptr) {
    p.fail("impl", fmt::format("{} acts through the balloon: add a 'balloon' entry to reclaim",
                               c.spec->name()));
  }
  if (needs.balloon_stats && (balloon == nullptr || balloon->stats_interval.ns() == 0)) {
    p.fail("impl", fmt::format("{} reads the balloon stats queue: set the balloon's "
                               "stats_interval (QEMU's guest-stats-polling-interval)",
                               c.spec->name()));
  }
  if (needs.deflate_on_oom && (balloon == nullptr || !balloon->deflate_on_oom)) {
    p.fail("impl", fmt::format("{} needs a balloon the guest can deflate on OOM: set the "
                               "balloon's deflate_on_oom: true (QEMU deflate-on-oom=on)",
                               c.spec->name()));
  }
  if (needs.ksm && mechanism_config<Ksm>(s) == nullptr) {
    p.fail("impl", fmt::format("{} tunes KSM: add a 'ksm' entry to reclaim", c.spec->name()));
  }
  if (needs.balloon && !p.has("min_memory")) {
    p.fail("min_memory", fmt::format("{} moves balloon targets: state the least memory it may "
                                     "leave a guest (the operator's minimum)",
                                     c.spec->name()));
  }
  c.min_memory = p.bytes("min_memory", Bytes{0}, "the least memory a policy may leave a guest");
  if (c.min_memory > s.vm.memory) p.fail("min_memory", "is more than vm.memory");
  c.max_memory = p.bytes("max_memory", s.vm.memory,
                         "the most memory a policy gives a guest (at most vm.memory)");
  if (c.max_memory > s.vm.memory) p.fail("max_memory", "is more than vm.memory");
  if (c.max_memory < c.min_memory) p.fail("max_memory", "is less than min_memory");
  return c;
}

}  // namespace

Scenario load_scenario(const std::string& file, const std::vector<std::string>& overrides,
                       const std::vector<ScenarioExtension>& extensions,
                       const std::vector<OverrideLayer>& layers) {
  auto [root, ctx, p, name, description, seed] = load_scenario_tree(file, overrides, "", layers);
  Scenario s;
  s.file = file;
  s.name = name;
  s.description = description;
  s.seed = seed;

  Params host = p.child("host");
  s.host.memory = host.required_bytes("memory", "physical memory of the host");
  s.host.vm_budget = host.bytes("vm_budget", s.host.memory, "memory the VMs may use");
  if (s.host.memory.pages() == 0) host.fail("memory", "must be at least one page");
  if (s.host.vm_budget > s.host.memory) host.fail("vm_budget", "exceeds host memory");
  s.host.content = host.option("content", ContentBackend::kFingerprint, kContentBackendSpellings,
                               "content backend: fingerprints (scale) or real bytes");
  s.host.kill_on_exhaustion = host.boolean(
      "kill_on_exhaustion", true, "host OOM killer ends the largest VM when memory runs out");
  if (host.has("cpus")) {
    s.host.cpus = static_cast<unsigned>(host.integer(
        "cpus", 1, "host CPUs (hardware threads) the vCPUs share; absent: one per vCPU", 1, 65536));
  }
  if (host.has("disk")) {
    Params disk = host.child("disk");
    s.host.disk = HostDisk::config_from(disk);
  }
  s.host.hypervisor =
      host.option("hypervisor", Hypervisor::kKvm, kHypervisorSpellings,
                  "kvm: guest memory backed on first touch; xen: partitioned PV domains");
  const bool xen = s.host.hypervisor == Hypervisor::kXen;
  if (xen) {
    s.host.dom0_memory = host.bytes("dom0_memory", Bytes{0}, "Xen: dom0's fixed memory");
    if (s.host.dom0_memory >= s.host.memory) host.fail("dom0_memory", "must be below host memory");
  } else if (host.has("dom0_memory")) {
    host.fail("dom0_memory", "only with hypervisor: xen");
  }

  const std::string resolved =
      p.data_file("calibration", "profiles/default.yaml", "cost profile file");
  s.profile_file = resolved;
  s.costs = CostProfile::load(resolved);

  Params vm = p.child("vm");
  s.vm.memory = vm.required_bytes("memory", "guest memory size");
  if (s.vm.memory.value() < (4ULL << 20) || s.vm.memory.value() % kPageSize != 0) {
    vm.fail("memory", "must be a whole number of pages, at least 4 MiB");
  }
  if (s.vm.memory > s.host.memory) vm.fail("memory", "exceeds host memory");
  s.vm.max_memory = s.vm.memory;
  if (vm.has("max_memory")) {
    if (!xen) vm.fail("max_memory", "only with host.hypervisor: xen (maxmem=)");
    s.vm.max_memory = vm.bytes("max_memory", s.vm.memory,
                               "Xen: maxmem=, the RAM the guest sees and may balloon up to");
    if (s.vm.max_memory < s.vm.memory) vm.fail("max_memory", "must be at least vm.memory");
    if (s.vm.max_memory.value() % kPageSize != 0) vm.fail("max_memory", "must be whole pages");
  }
  s.vm.vcpus = static_cast<unsigned>(vm.integer("vcpus", 1, "virtual CPUs", 1, 256));
  s.vm.launch_interval = vm.duration("launch_interval", Duration{0}, "time between VM launches");
  s.vm.kernel = GuestKernelConfig::from_params(vm.child("kernel"), s.vm.max_memory, s.vm.vcpus);
  s.vm.disk = vm.bytes("disk", Bytes{0},
                       "virtual disk size: the filesystem, then the swap partition; 0: no disk");
  if (s.vm.kernel.swap.value() > 0 && s.vm.disk <= s.vm.kernel.swap) {
    vm.fail("disk", "must be larger than kernel.swap, which is a partition of it");
  }
  Params boot = vm.child("boot");
  s.vm.boot.footprint = boot.bytes("footprint", Bytes{0}, "memory the guest OS touches at boot");
  if (s.vm.boot.footprint >= s.vm.memory) boot.fail("footprint", "must be below guest memory");
  s.vm.boot.transient = boot.bytes(
      "transient", Bytes{0},
      "memory touched while booting and freed before the workloads (initramfs, decompression)");
  if (s.vm.boot.footprint.value() + s.vm.boot.transient.value() >= s.vm.memory.value()) {
    boot.fail("transient", "footprint + transient must be below guest memory");
  }
  s.vm.boot.shared_fraction = boot.real(
      "shared_fraction", 0.0, "share of the footprint identical across VMs of one image", 0, 1);
  s.vm.boot.image = boot.string("image", "default", "image identity");
  s.vm.boot.boot_time = boot.duration("time", Duration{0}, "time from launch to workloads");
  const WorkloadRegistry workloads = make_workload_registry();
  for (Params w : vm.sequence("workloads")) {
    s.vm.workloads.push_back(workloads.parse(w));
    if (s.vm.workloads.back()->as<FileReader>() != nullptr && s.vm.disk.value() == 0) {
      w.fail("type", "file_reader needs a disk for its files: set vm.disk");
    }
    if (const KernelBuild::Config* c = s.vm.workloads.back()->as<KernelBuild>()) {
      if (s.vm.disk.value() == 0)
        w.fail("type", "kernel_build needs a disk for its tree: set vm.disk");
      const Bytes fs = s.vm.disk - s.vm.kernel.swap;
      if (fs < c->disk_needed()) {
        vm.fail("disk", fmt::format("leaves {} MiB for the filesystem (beside kernel.swap); "
                                    "kernel_build's tree and outputs need {} MiB",
                                    fs.value() >> 20, (c->disk_needed().value() >> 20) + 1));
      }
    }
  }

  const MechanismRegistry mechanisms = make_mechanism_registry();
  for (Params m : p.sequence("reclaim")) {
    s.reclaim.push_back(mechanisms.parse(m));
    const bool of_xen = s.reclaim.back()->as<TmemFrontends>() != nullptr ||
                        s.reclaim.back()->as<SelfBalloon>() != nullptr;
    if (of_xen && !xen) {
      m.fail("impl",
             fmt::format("{} runs on Xen: set host.hypervisor: xen", s.reclaim.back()->name()));
    }
  }

  // `policy: none` says there is none (as leaving it out does), so a command line can take a
  // scenario's policy away: -p policy=none.
  if (p.has_scalar("policy")) {
    p.choice("policy", "none", {"none"}, "no host policy: every guest keeps what it booted with");
  } else if (p.has("policy")) {
    s.policy = read_policy(p.child("policy"), s);
  }

  Params ex = p.child("experiment");
  s.experiment.spec = make_experiment_registry().parse(ex, "fixed");
  s.experiment.duration =
      ex.duration("duration", Duration::seconds(3600), "virtual time simulated");
  if (s.experiment.duration.ns() <= 0) ex.fail("duration", "must be positive");
  s.experiment.warmup = ex.duration("warmup", Duration{0}, "statistics start here");
  if (s.experiment.warmup >= s.experiment.duration)
    ex.fail("warmup", "must be shorter than duration");
  s.experiment.sample_interval =
      ex.duration("sample_interval", Duration::seconds(10), "time between time-series samples");
  if (s.experiment.sample_interval.ns() <= 0) ex.fail("sample_interval", "must be positive");
  s.experiment.checks = ex.option("checks", CheckLevel::kCheap, kCheckLevelSpellings,
                                  "invariant checks during the run");
  s.experiment.replicates = static_cast<unsigned>(ex.integer(
      "replicates", 1,
      "runs of the experiment, each with its own seed (the first: the scenario's); results "
      "are their aggregate",
      1, 1000));
  if (s.experiment.replicates > 1 && s.experiment.spec->as<FixedExperiment>() == nullptr) {
    ex.fail("replicates", fmt::format("only 'fixed' experiments run replicates; a '{}' "
                                      "experiment runs once (replicates: 1)",
                                      s.experiment.spec->name()));
  }
  if (const auto* fixed = s.experiment.spec->as<FixedExperiment>();
      fixed != nullptr && fixed->baseline && s.experiment.replicates > 1) {
    ex.fail("baseline", "a baseline runs with one replicate (replicates: 1)");
  }
  s.experiment.aggregate =
      ex.option("aggregate", Aggregate::kMean, kAggregateSpellings,
                "how replicates combine, each number separately: mean | trimmed_mean (the "
                "highest and the lowest dropped, the rest averaged)");
  if (s.experiment.aggregate == Aggregate::kTrimmedMean && s.experiment.replicates < 3) {
    ex.fail("aggregate", fmt::format("trimmed_mean drops the highest and the lowest run: it needs "
                                     "replicates: 3 or more (replicates: {}), or aggregate: mean",
                                     s.experiment.replicates));
  }

  Params ref = p.child("reference");
  if (ref.has("vms")) s.reference.vms = ref.real("vms", 0, "the seed's measured VM count", 0);
  if (ref.has("host_memory_gib_avg")) {
    s.reference.host_memory_gib_avg =
        ref.real("host_memory_gib_avg", 0, "the seed's average host memory", 0);
  }
  s.reference.source = ref.string("source", "", "where the reference numbers come from");

  for (const ScenarioExtension& e : extensions) s.extensions[e.key] = e.read(p.child(e.key));

  ctx->check_all_read(root);
  s.effective = YAML::Clone(ctx->effective());
  s.source = root;
  s.params = ctx;
  return s;
}

SourcePlace Scenario::place_of(const std::string& path) const {
  if (!params) return SourcePlace{file, 0, path};
  // Walk "a.b[2].c" down the source tree (read-only: yaml-cpp's assignment would write into
  // it), keeping the deepest node found.
  YAML::Node found = source;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    std::optional<std::size_t> index;
    if (const auto bracket = part.find('['); bracket != std::string::npos) {
      index = std::stoul(part.substr(bracket + 1));
      part = part.substr(0, bracket);
    }
    const YAML::Node& here = found;
    if (!here.IsMap() || !here[part]) break;
    YAML::Node next = here[part];
    if (index) {
      if (!next.IsSequence() || *index >= next.size()) break;
      const YAML::Node& seq = next;
      YAML::Node element = seq[*index];
      next.reset(element);
    }
    found.reset(next);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return params->place(path, found);
}

}  // namespace memvirt
