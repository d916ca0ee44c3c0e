// A scenario turned into what the real lab runs: per guest, the files appended to its
// initramfs (the settings and workload command lines in /etc/memvirt/vm.sh) and its virtual
// disk's contents, and for the host, the QEMU devices (virtio-balloon with or without free
// page reporting, stats polling, balloon targets, the virtio disk) and KSM's settings. Everything
// the real kernel or QEMU cannot do as the scenario asks is an InputError naming the scenario's
// line; parameters of the simulator's models that the real kernel fixes are listed as notes.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "host/compression.hpp"
#include "lab/disk_image.hpp"
#include "lab/image.hpp"
#include "lab/lab_config.hpp"
#include "reclaim/balloon.hpp"
#include "scenario/scenario.hpp"

namespace memvirt {

struct LabVm {
  unsigned index = 0;
  std::string name;  // "vm0", ...
  Duration launch_at;
  // Files of the guest's own archive: (path without leading '/', contents).
  std::vector<std::pair<std::string, std::string>> files;
  // Kernel settings the guest writes: (path, value expected to read back).
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<std::string> workload_tags;  // "w0", ...
  // The guest's virtio disk (vm.disk): partitions, and the files its file_reader workloads
  // read, on the filesystem the guest mounts at /mnt/disk; nullopt without vm.disk.
  std::optional<DiskSpec> disk;
};

struct LabPlan {
  std::string scenario;
  Bytes memory;
  unsigned vcpus = 1;
  bool reporting = false;
  unsigned reporting_order = 9;
  bool deflate_on_oom = false;
  Duration stats_interval{};           // 0: no stats polling
  std::vector<BalloonTarget> targets;  // from each VM's launch
  bool ksm = false;
  std::optional<std::size_t> ksm_entry;                           // its index in `reclaim:`
  std::vector<std::pair<std::string, std::string>> ksm_settings;  // sysfs name, value
  // zswap in the guests (reclaim: zswap): its index in `reclaim:`; its settings are in each
  // guest's `settings`, and the guests sample its debugfs counters.
  std::optional<std::size_t> zswap_entry;
  // The Debian kernel the guests boot (lab.kernel_flavour, auto resolved from the scenario).
  KernelFlavour kernel_flavour = KernelFlavour::kCloud;
  // Modules the guests load before writing their settings (zswap, its zpool and compressor):
  // each must be built into the guest kernel or be in the image (GuestImage::has_module).
  std::vector<std::string> guest_modules;
  std::vector<LabVm> vms;
  // Each guest disk's bandwidth limit (host.disk.bandwidth, QEMU's throttling of the drive),
  // bytes per second; 0: not limited. QEMU throttles within one process, so guests do not
  // share it as the simulator's VMs share the host's disk.
  std::uint64_t disk_bandwidth = 0;
  Duration duration, warmup, sample_interval;
  LabConfig lab;
  std::vector<std::string> kernel_args;  // from the scenario's guest kernel settings
  std::vector<std::string> notes;        // scenario values the real run cannot apply
};

LabPlan make_lab_plan(const Scenario& s);

// zswap's name for a compressor (/sys/module/zswap/parameters/compressor, the kernel crypto
// API's algorithm name): lzo1x-1 -> "lzo", lz4 -> "lz4", zstd -> "zstd".
const char* zswap_compressor_name(Compressor c);

// The guest kernel lacks a module the plan needs: the error to report, else empty.
std::string missing_guest_module(const LabPlan& plan, const GuestImage& image);

// The guest kernel command line for a plan.
std::string guest_kernel_command_line(const LabPlan& plan);

}  // namespace memvirt
