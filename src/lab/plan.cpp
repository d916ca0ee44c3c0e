#include "lab/plan.hpp"

#include <fmt/format.h>

#include "core/rng.hpp"
#include "core/units.hpp"
#include "reclaim/hinting.hpp"
#include "reclaim/ksm.hpp"
#include "reclaim/reporting.hpp"
#include "reclaim/zswap.hpp"
#include "scenario/experiments.hpp"
#include "workload/file_reader.hpp"
#include "workload/memhog.hpp"
#include "workload/page_fault.hpp"
#include "workload/periodic_alloc.hpp"
#include "workload/trace_replay.hpp"

namespace memvirt {
namespace {

constexpr const char* kGuest = "/bin/memvirt-guest";
// Where the guest mounts its disk's filesystem; workload i's files are in w<i>/ there.
constexpr const char* kMount = "/mnt/disk";

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
    std::string content;
    if (c->content) {
      // The simulator's own contents: the guest writes the bytes of the fingerprints the
      // simulated memhog draws (host/content.hpp's generate_page_bytes).
      const UniqueContent u(s.seed, vm, Memhog::content_stream(index), *c->content);
      content =
          fmt::format(" content={} content_base={}", static_cast<unsigned>(*c->content), u.base());
    }
    return fmt::format(
        "{} memhog {} size={} start={} hold={} then={} repeat={} interval={} thp={} seed={}{}",
        kGuest, tag, c->size.value(), ns(c->start), ns(c->hold), c->exit_after ? "exit" : "free",
        c->repeat, ns(c->interval), c->thp ? 1 : 0, seed, content);
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
  if (const FileReader::Config* c = w.as<FileReader>()) {
    return fmt::format(
        "{} file_reader {} dir={}/{} files={} size={} request={} pattern={} passes={} rate={} "
        "start={} write={} seed={}",
        kGuest, tag, kMount, tag, c->files, c->size.pages() * kPageSize, c->request.value(),
        c->pattern == FileReader::Pattern::kRandom ? "random" : "sequential", c->passes,
        c->rate.value(), ns(c->start), c->write ? 1 : 0, seed);
  }
  fail(s, path + ".type", fmt::format("workload type '{}' has no guest program", w.name()));
}

// The disk of guest `vm`: the layout of vm.disk and the files its file_reader workloads read,
// with the contents the simulator gives them (src/workload/file_reader.cpp): the image's
// files for shared ones, the VM's own otherwise. Writers get an empty folder.
DiskSpec disk_of(const Scenario& s, unsigned vm) {
  DiskSpec d;
  d.layout = disk_layout(s.vm.disk.value(), s.vm.kernel.swap.value());
  std::vector<std::uint64_t> sizes;
  for (unsigned w = 0; w < s.vm.workloads.size(); ++w) {
    const FileReader::Config* c = s.vm.workloads[w]->as<FileReader>();
    if (c == nullptr) continue;
    const std::uint64_t bytes = c->size.pages() * kPageSize;
    if (c->write) d.dirs.push_back(fmt::format("w{}", w));
    for (std::uint64_t i = 0; i < c->files; ++i) {
      sizes.push_back(bytes);
      if (c->write) continue;
      const std::uint64_t content =
          c->shared ? name_hash(c->image) + i : splitmix64(s.seed ^ splitmix64(vm * 7919 + i + 1));
      d.files.push_back({fmt::format("w{}/f{}", w, i), bytes, content});
    }
  }
  if (d.layout.fs_bytes == 0) {
    fail(s, "vm.disk",
         fmt::format("{} leaves no room for a filesystem after 1 MiB of partition table and {} of "
                     "swap",
                     format_bytes(s.vm.disk), format_bytes(s.vm.kernel.swap)));
  }
  const std::uint64_t need = ext4_bytes_needed(d.layout.fs_bytes, sizes);
  if (need > d.layout.fs_bytes) {
    fail(s, "vm.disk",
         fmt::format("the workloads' files need about {} of ext4 filesystem; the disk has {} for "
                     "it",
                     format_bytes(Bytes{need}), format_bytes(Bytes{d.layout.fs_bytes})));
  }
  return d;
}

// Shell lines of vm.sh that mount the disk's filesystem at kMount and enable its swap. The
// partitions appear when virtio_blk has probed the disk; the loop waits for them a little.
std::string mount_commands(const DiskSpec& d) {
  std::string sh = fmt::format(
      "n=0; while [ ! -b /dev/vda1 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done\n"
      "mount -t ext4 -o noatime /dev/vda1 {0} || $G marker init error what=cannot mount "
      "/dev/vda1 on {0}\n",
      kMount);
  if (d.layout.swap_bytes > 0) {
    sh += "swapon /dev/vda2 || $G marker init error what=swapon /dev/vda2 failed\n";
  }
  sh += fmt::format("$G marker init disk fs_bytes={} swap_bytes={} files={}\n", d.layout.fs_bytes,
                    d.layout.swap_bytes, d.files.size());
  return sh;
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
  if (s.experiment.replicates > 1) {
    fail(s, "experiment.replicates",
         fmt::format("the lab runs its guests once; replicates ({}) are simulator-only",
                     s.experiment.replicates));
  }
  if (s.host.hypervisor != Hypervisor::kKvm) {
    fail(s, "host.hypervisor",
         "the lab runs QEMU guests (KVM or TCG); Xen's partitioned host is simulator-only");
  }
  plan.duration = s.experiment.duration;
  plan.warmup = s.experiment.warmup;
  plan.sample_interval = s.experiment.sample_interval;

  plan.memory = s.vm.memory;
  plan.vcpus = s.vm.vcpus;
  if (plan.memory.value() % (1ULL << 20) != 0)
    fail(s, "vm.memory", "QEMU takes whole MiB of memory");

  // Reclaim mechanisms: each field either has a real counterpart or is refused.
  const ZswapConfig* zswap = nullptr;
  for (std::size_t i = 0; i < s.reclaim.size(); ++i) {
    const MechanismSpec& m = *s.reclaim[i];
    const std::string path = fmt::format("reclaim[{}]", i);
    if (const KsmConfig* k = m.as<Ksm>()) {
      if (!k->run) {
        fail(s, path + ".run",
             "the lab runs the host's KSM (run = 1); run: false is for a "
             "simulated policy that starts it");
      }
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
    } else if (const ZswapConfig* z = m.as<Zswap>()) {
      if (plan.zswap_entry) {
        fail(s, path + ".impl",
             fmt::format("a guest kernel has one zswap, and reclaim[{}] is zswap already",
                         *plan.zswap_entry));
      }
      plan.zswap_entry = i;
      zswap = z;
    } else if (m.as<FreePageHinting>() != nullptr) {
      fail(s, path + ".impl",
           "free page hinting (RFC v8, seed 001) never reached mainline; the lab's stock "
           "kernel has free page reporting instead (impl: reporting)");
    } else {
      fail(s, path + ".impl",
           fmt::format("'{}' needs a patched host and guest kernel; the lab runs stock Debian "
                       "kernels (ksm, reporting, balloon and zswap are real)",
                       m.name()));
    }
  }

  if (s.policy) {
    fail(s, "policy.impl",
         "policies run in the simulator only so far: remove policy: or run "
         "with --backend sim");
  }

  // The guest kernel: Debian's cloud kernel has no zswap (# CONFIG_ZSWAP is not set), the
  // generic one has it built in.
  if (plan.lab.kernel_flavour == "auto") {
    plan.kernel_flavour = zswap != nullptr ? KernelFlavour::kGeneric : KernelFlavour::kCloud;
  } else {
    plan.kernel_flavour =
        plan.lab.kernel_flavour == "generic" ? KernelFlavour::kGeneric : KernelFlavour::kCloud;
  }
  if (zswap != nullptr && plan.kernel_flavour == KernelFlavour::kCloud && plan.lab.kernel.empty()) {
    fail(s, "lab.kernel_flavour",
         fmt::format("reclaim[{}] is zswap, and Debian's cloud kernel is built without it "
                     "(# CONFIG_ZSWAP is not set): use kernel_flavour generic or auto",
                     *plan.zswap_entry));
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
  // Reclaim, writeback and swap settings (Documentation/admin-guide/sysctl/vm.rst).
  const auto centisecs = [&](const char* key, Duration d) {
    if (d.ns() % 10'000'000 != 0) {
      fail(s, fmt::format("vm.kernel.{}", key), "the kernel takes whole centiseconds");
    }
    return std::to_string(d.ns() / 10'000'000);
  };
  settings.emplace_back("/proc/sys/vm/swappiness", std::to_string(kernel.swappiness));
  settings.emplace_back("/proc/sys/vm/dirty_background_ratio",
                        std::to_string(kernel.dirty_background_ratio));
  settings.emplace_back("/proc/sys/vm/dirty_ratio", std::to_string(kernel.dirty_ratio));
  settings.emplace_back("/proc/sys/vm/dirty_expire_centisecs",
                        centisecs("dirty_expire", kernel.dirty_expire));
  settings.emplace_back("/proc/sys/vm/dirty_writeback_centisecs",
                        centisecs("dirty_writeback", kernel.dirty_writeback));
  settings.emplace_back("/proc/sys/vm/page-cluster", std::to_string(kernel.page_cluster));
  const bool disk = s.vm.disk.value() > 0;
  if (disk) {
    settings.emplace_back("/sys/block/vda/queue/read_ahead_kb",
                          std::to_string(kernel.read_ahead_pages * kPageSize / 1024));
  }
  if (zswap != nullptr) {
    // Documentation/admin-guide/mm/zswap.rst: the parameters, then enabled last, so the pool
    // is made once with the scenario's compressor and zpool before any page is stored.
    const std::string zpath = fmt::format("reclaim[{}]", *plan.zswap_entry);
    if (kernel.swap.value() == 0) {
      fail(s, zpath + ".impl",
           "zswap keeps pages on their way to a swap device, and the guest has none: set "
           "vm.kernel.swap (a partition of vm.disk)");
    }
    const std::string dir = "/sys/module/zswap/parameters/";
    settings.emplace_back(dir + "compressor", zswap_compressor_name(zswap->compressor));
    settings.emplace_back(dir + "zpool", spelling_of(kZpoolSpellings, zswap->zpool));
    settings.emplace_back(dir + "max_pool_percent", std::to_string(zswap->max_pool_percent));
    settings.emplace_back(dir + "accept_threshold_percent",
                          std::to_string(zswap->accept_threshold_percent));
    settings.emplace_back(dir + "same_filled_pages_enabled", zswap->same_filled_pages ? "Y" : "N");
    settings.emplace_back(dir + "enabled", "Y");
    plan.guest_modules = {"zswap", spelling_of(kZpoolSpellings, zswap->zpool),
                          zswap_compressor_name(zswap->compressor)};
    plan.notes.push_back(fmt::format(
        "{}.compression_profile: the simulator's compressed sizes; the real guest compresses its "
        "pages' own bytes",
        zpath));
    for (unsigned w = 0; w < s.vm.workloads.size(); ++w) {
      const Memhog::Config* c = s.vm.workloads[w]->as<Memhog>();
      if (c == nullptr || c->content) continue;
      plan.notes.push_back(fmt::format(
          "vm.workloads[{}].content is not set: the simulated memhog's pages are random bytes "
          "(opaque, they do not compress), the guest program's are one repeated byte with a "
          "unique first word (they compress to almost nothing); name a content class for "
          "comparable compression",
          w));
    }
  }
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
  fixed_by_kernel("workingset", kernel.workingset != linux_defaults.workingset);
  fixed_by_kernel("anon_starts_active",
                  kernel.anon_starts_active != linux_defaults.anon_starts_active);
  if (disk) {
    // The guests' disks are files on the host's own storage; QEMU can cap their bandwidth.
    if (plan.lab.disk_throttle) {
      plan.disk_bandwidth = s.host.disk.bandwidth.value();
      plan.notes.push_back(fmt::format(
          "host.disk.bandwidth {}/s: QEMU limits each guest's disk to it; guests do not share "
          "it (QEMU throttles within one process), and the host's own storage serves them",
          format_bytes(s.host.disk.bandwidth)));
    } else {
      plan.notes.push_back(
          "host.disk.bandwidth: not applied (lab.disk_throttle: false); the host's own storage "
          "sets the guests' disk speed");
    }
    plan.notes.push_back(
        fmt::format("host.disk.seek {}: not applied; positioning time is the host storage's own",
                    format_duration(s.host.disk.seek)));
  }
  for (unsigned w = 0; w < s.vm.workloads.size(); ++w) {
    const FileReader::Config* c = s.vm.workloads[w]->as<FileReader>();
    if (c != nullptr && c->pattern == FileReader::Pattern::kRandom) {
      plan.notes.push_back(
          fmt::format("vm.workloads[{}].pattern random: the guest draws its own offsets (the same "
                      "distribution, not the simulator's draws)",
                      w));
    }
  }
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
    // The kernel's own watermark setting before any is written: with transparent huge pages
    // khugepaged raises min_free_kbytes above the sqrt formula (set_recommended_min_free_kbytes).
    sh += "$G marker init kernel min_free_kbytes=$(cat /proc/sys/vm/min_free_kbytes)\n";
    if (plan.zswap_entry) {
      // zswap's counters are in debugfs.
      sh +=
          "mount -t debugfs none /sys/kernel/debug || $G marker init error what=cannot mount "
          "debugfs\n";
    }
    for (const std::string& m : plan.guest_modules) sh += fmt::format("load_module {}\n", m);
    for (const auto& [path, value] : settings)
      sh += fmt::format("$G set init {} {}\n", path, value);
    if (disk) {
      g.disk = disk_of(s, i);
      sh += mount_commands(*g.disk);
    }
    sh += fmt::format("$G meminfo sys interval={}{} &\n", ns(plan.lab.guest_sample_interval),
                      plan.zswap_entry ? " zswap=1" : "");
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

const char* zswap_compressor_name(Compressor c) {
  switch (c) {
    case Compressor::kLzo1x1:
      return "lzo";
    case Compressor::kLz4:
      return "lz4";
    case Compressor::kZstd:
      return "zstd";
  }
  return "lzo";
}

std::string missing_guest_module(const LabPlan& plan, const GuestImage& image) {
  for (const std::string& m : plan.guest_modules) {
    if (image.has_module(m)) continue;
    return fmt::format(
        "the guest kernel {} has no {} (neither built in nor a module){}", image.kernel_release, m,
        plan.zswap_entry ? "; zswap needs Debian's generic kernel (lab.kernel_flavour: generic, "
                           "package linux-image-amd64)"
                         : "");
  }
  return {};
}

std::string guest_kernel_command_line(const LabPlan& plan) {
  // panic=-1 with QEMU's -no-reboot: a guest panic ends QEMU at once, which the lab reports.
  std::string cmd = "console=ttyS0 loglevel=4 panic=-1";
  for (const auto& a : plan.kernel_args) cmd += " " + a;
  if (!plan.lab.kernel_args.empty()) cmd += " " + plan.lab.kernel_args;
  return cmd;
}

}  // namespace memvirt
