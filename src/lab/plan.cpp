#include "lab/plan.hpp"

#include <fmt/format.h>

#include "core/rng.hpp"
#include "reclaim/hinting.hpp"
#include "reclaim/ksm.hpp"
#include "reclaim/reporting.hpp"
#include "scenario/experiments.hpp"
#include "workload/memhog.hpp"
#include "workload/page_fault.hpp"
#include "workload/periodic_alloc.hpp"
#include "workload/trace_replay.hpp"

namespace memvirt {
namespace {

constexpr const char* kGuest = "/bin/memvirt-guest";

// Errors point at the scenario's own line for the field.
[[noreturn]] void fail(const Scenario& s, const std::string& path, const std::string& message) {
  throw InputError(s.place_of(path), "lab backend: " + message);
}

std::string ns(Duration d) {
  return std::to_string(d.ns());
}

// The guest's command line for one workload entry; extra files go into `files`. `touch_chunk`
// is the simulator's time granularity; real programs touch page by page.
std::string workload_command(const Scenario& s, const WorkloadSpec& w, unsigned vm, unsigned index,
                             const LabPlan& plan,
                             std::vector<std::pair<std::string, std::string>>& files) {
  const std::string tag = fmt::format("w{}", index);
  const std::string path = fmt::format("vm.workloads[{}]", index);
  const std::uint64_t seed = splitmix64(s.seed ^ splitmix64(vm * 1024ULL + index + 1));
  if (const Memhog::Config* c = w.as<Memhog>()) {
    return fmt::format(
        "{} memhog {} size={} start={} hold={} then={} repeat={} interval={} thp={} seed={}",
        kGuest, tag, c->size.value(), ns(c->start), ns(c->hold), c->exit_after ? "exit" : "free",
        c->repeat, ns(c->interval), c->thp ? 1 : 0, seed);
  }
  if (const PeriodicAlloc::Config* c = w.as<PeriodicAlloc>()) {
    // The simulator's own draws for this VM, so the real guest allocates what the simulated
    // one does.
    PeriodicAlloc::Draws draws(*c, s.seed, vm, index);
    const Duration phase = draws.phase();
    const std::int64_t cycles =
        std::max<std::int64_t>(0, (plan.duration - phase).ns()) / c->period.ns() + 1;
    std::string list;
    for (std::int64_t i = 0; i < cycles; ++i) list += std::to_string(draws.amount().value()) + "\n";
    const std::string file = fmt::format("etc/memvirt/{}.amounts", tag);
    files.emplace_back(file, list);
    const std::string hold = c->mean_in_use
                                 ? fmt::format("mean_in_use={}", c->mean_in_use->value())
                                 : fmt::format("hold={}", ns(c->hold.value_or(Duration{})));
    return fmt::format("{} periodic_alloc {} period={} phase={} amounts=/{} {} seed={}", kGuest,
                       tag, ns(c->period), ns(phase), file, hold, seed);
  }
  if (const TraceReplay::Config* c = w.as<TraceReplay>()) {
    if (c->random_phase) fail(s, path + ".phase", "a random trace phase is not implemented");
    std::string rows;
    for (const auto& p : c->trace->points) {
      rows += fmt::format("{} {}\n", p.time.ns(), p.in_use.value());
    }
    const std::string file = fmt::format("etc/memvirt/{}.trace", tag);
    files.emplace_back(file, rows);
    return fmt::format("{} trace {} file=/{} loop={} phase={} seed={}", kGuest, tag, file,
                       c->loop ? 1 : 0, ns(c->phase), seed);
  }
  if (const PageFault::Config* c = w.as<PageFault>()) {
    return fmt::format("{} page_fault {} kind={} tasks={} thp={} size={} duration={} start={}",
                       kGuest, tag, c->file_backed ? 2 : 1, c->tasks, c->thp ? 1 : 0,
                       c->size.value(), ns(c->duration), ns(c->start));
  }
  fail(s, path + ".type", fmt::format("workload type '{}' has no guest program", w.name()));
}

}  // namespace

LabPlan make_lab_plan(const Scenario& s) {
  LabPlan plan;
  plan.scenario = s.name;
  plan.lab = lab_config(s);

  const auto* fixed = s.experiment.spec->as<FixedExperiment>();
  if (fixed == nullptr) {
    fail(s, "experiment.type",
         fmt::format("experiment type '{}' is simulator-only; the lab runs 'fixed' experiments (a "
                     "set number of guests for a set time)",
                     s.experiment.spec->name()));
  }
  plan.duration = s.experiment.duration;
  plan.warmup = s.experiment.warmup;
  plan.sample_interval = s.experiment.sample_interval;

  plan.memory = s.vm.memory;
  plan.vcpus = s.vm.vcpus;
  if (plan.memory.value() % (1ULL << 20) != 0)
    fail(s, "vm.memory", "QEMU takes whole MiB of memory");

  // Reclaim mechanisms: each field either has a real counterpart or is refused.
  for (std::size_t i = 0; i < s.reclaim.size(); ++i) {
    const MechanismSpec& m = *s.reclaim[i];
    const std::string path = fmt::format("reclaim[{}]", i);
    if (const KsmConfig* k = m.as<Ksm>()) {
      plan.ksm = true;
      plan.ksm_entry = i;
      plan.ksm_settings = {{"pages_to_scan", std::to_string(k->pages_to_scan)},
                           {"sleep_millisecs", std::to_string(k->sleep.ns() / 1'000'000)},
                           {"max_page_sharing", std::to_string(k->max_page_sharing)},
                           {"use_zero_pages", k->use_zero_pages ? "1" : "0"},
                           {"smart_scan", k->smart_scan ? "1" : "0"}};
      if (k->checksum != Op::kXxh64Page) {
        plan.notes.push_back(fmt::format(
            "reclaim ksm checksum {}: the host kernel's KSM uses its own (xxhash since 6.x)",
            spelling_of(kKsmChecksumSpellings, k->checksum)));
      }
    } else if (const ReportingConfig* r = m.as<FreePageReporting>()) {
      plan.reporting = true;
      plan.reporting_order = r->order;
      if (r->discard != DiscardMode::kDontNeed) {
        fail(s, path + ".discard", "QEMU discards reported pages with MADV_DONTNEED only");
      }
      if (r->delay != Duration::seconds(2)) {
        fail(s, path + ".delay", "PAGE_REPORTING_DELAY is compiled into the guest kernel (2 s)");
      }
      if (r->capacity != 32) {
        fail(s, path + ".capacity",
             "PAGE_REPORTING_CAPACITY is compiled into the guest kernel (32)");
      }
    } else if (const BalloonConfig* b = m.as<Balloon>()) {
      plan.deflate_on_oom = b->deflate_on_oom;
      plan.stats_interval = b->stats_interval;
      if (plan.stats_interval.ns() % 1'000'000'000 != 0) {
        fail(s, path + ".stats_interval", "QEMU polls balloon statistics in whole seconds");
      }
      for (std::size_t t = 0; t < b->targets.size(); ++t) {
        if (b->targets[t].size >= plan.memory) {
          fail(s, fmt::format("{}.targets[{}].size", path, t), "must be below the guest's memory");
        }
        plan.targets.push_back(b->targets[t]);
      }
    } else if (m.as<FreePageHinting>() != nullptr) {
      fail(s, path + ".impl",
           "free page hinting (RFC v8, seed 001) never reached mainline; the lab's stock "
           "kernel has free page reporting instead (impl: reporting)");
    } else {
      fail(s, path + ".impl",
           fmt::format("'{}' needs a patched host and guest kernel; the lab runs stock Debian "
                       "kernels (ksm, reporting and balloon are real)",
                       m.name()));
    }
  }

  // The guest kernel's settings that Linux exposes; the rest are fixed by the real kernel.
  const GuestKernelConfig& kernel = s.vm.kernel;
  const GuestKernelConfig linux_defaults;
  std::vector<std::pair<std::string, std::string>> settings;
  if (plan.reporting) {
    // Written after the balloon driver has registered: 6.1's page_reporting_register()
    // overwrites the boot parameter with pageblock_order.
    settings.emplace_back("/sys/module/page_reporting/parameters/page_reporting_order",
                          std::to_string(plan.reporting_order));
  }
  if (kernel.min_free_kbytes != 0) {
    settings.emplace_back("/proc/sys/vm/min_free_kbytes", std::to_string(kernel.min_free_kbytes));
  }
  settings.emplace_back("/proc/sys/vm/watermark_scale_factor",
                        std::to_string(kernel.watermark_scale_factor));
  if (plan.lab.guest_thp != GuestThp::kDefault) {
    settings.emplace_back("/sys/kernel/mm/transparent_hugepage/enabled",
                          spelling_of(kGuestThpSpellings, plan.lab.guest_thp));
  }
  // page_alloc.shuffle is a boot parameter; CONFIG_SHUFFLE_PAGE_ALLOCATOR is on in Debian.
  if (kernel.shuffle) plan.kernel_args.push_back("page_alloc.shuffle=1");
  // What the model lets a scenario change but the real kernel computes for itself.
  const auto fixed_by_kernel = [&](const char* key, bool differs) {
    if (differs)
      plan.notes.push_back(fmt::format("vm.kernel.{}: fixed by the real guest kernel", key));
  };
  fixed_by_kernel("lowmem", kernel.lowmem.has_value());
  fixed_by_kernel("min_free_kbytes_max",
                  kernel.min_free_kbytes_max != linux_defaults.min_free_kbytes_max);
  fixed_by_kernel("pcp_batch_cap", kernel.pcp_batch_cap != linux_defaults.pcp_batch_cap);
  fixed_by_kernel("pcp_high_factor", kernel.pcp_high_factor != linux_defaults.pcp_high_factor);
  if (s.vm.boot.footprint.value() > 0 || s.vm.boot.transient.value() > 0 ||
      s.vm.boot.boot_time.ns() > 0) {
    plan.notes.push_back(
        "vm.boot: the real guest boots its own kernel; footprint, transient and time are "
        "measured, not set");
  }

  // One guest per VM, each with its own archive.
  for (unsigned i = 0; i < fixed->vms; ++i) {
    LabVm g;
    g.index = i;
    g.name = fmt::format("vm{}", i);
    g.launch_at = Duration{s.vm.launch_interval.ns() * i};
    g.settings = settings;
    std::string sh = fmt::format(
        "# Guest {} of scenario {}: its settings and workloads, written by memvirt.\n"
        "G={}\n",
        g.name, s.name, kGuest);
    for (const auto& [path, value] : settings)
      sh += fmt::format("$G set init {} {}\n", path, value);
    sh += fmt::format("$G meminfo sys interval={} &\n", ns(plan.lab.guest_sample_interval));
    sh += "$G marker init start\nW=\n";
    for (unsigned w = 0; w < s.vm.workloads.size(); ++w) {
      sh += workload_command(s, *s.vm.workloads[w], i, w, plan, g.files) + " &\nW=\"$W $!\"\n";
      g.workload_tags.push_back(fmt::format("w{}", w));
    }
    sh += "wait $W\n$G marker init workloads_done\n";
    g.files.emplace_back("etc/memvirt/vm.sh", sh);
    plan.vms.push_back(std::move(g));
  }
  return plan;
}

std::string guest_kernel_command_line(const LabPlan& plan) {
  // panic=-1 with QEMU's -no-reboot: a guest panic ends QEMU at once, which the lab reports.
  std::string cmd = "console=ttyS0 loglevel=4 panic=-1";
  for (const auto& a : plan.kernel_args) cmd += " " + a;
  if (!plan.lab.kernel_args.empty()) cmd += " " + plan.lab.kernel_args;
  return cmd;
}

}  // namespace memvirt
