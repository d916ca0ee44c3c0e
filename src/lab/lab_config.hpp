// The scenario's `lab:` section: how the real lab runs the scenario's guests (QEMU binary,
// accelerator, image, timeouts). Every run of the command reads it (lab_extension()), so one
// file drives both backends and a misspelt key is an error on either.
#pragma once

#include <string>

#include "core/params.hpp"
#include "core/types.hpp"
#include "lab/qemu_command.hpp"
#include "scenario/scenario.hpp"

namespace memvirt {

// Guest transparent huge pages: the kernel's own setting, or one written at boot.
enum class GuestThp : std::uint8_t { kDefault, kAlways, kMadvise, kNever };
inline constexpr std::array<Spelling<GuestThp>, 4> kGuestThpSpellings{
    {{GuestThp::kDefault, "default"},
     {GuestThp::kAlways, "always"},
     {GuestThp::kMadvise, "madvise"},
     {GuestThp::kNever, "never"}}};

struct LabConfig {
  std::string qemu;            // QEMU system emulator: name in PATH or a path
  std::string accel;           // auto | kvm | tcg
  std::string image;           // image folder; empty: lab-image in the build folder
  std::string kernel;          // guest kernel; empty: the newest of kernel_flavour in /boot
  std::string kernel_flavour;  // auto | cloud | generic; auto: generic with zswap, else cloud
  std::string kernel_args;     // appended to the guest kernel command line
  GuestThp guest_thp = GuestThp::kDefault;
  Duration boot_timeout;                    // launch to the guest's first marker
  Duration silence_timeout;                 // longest a booted guest may go without a marker
  Duration qmp_timeout;                     // per QMP command
  Duration guest_sample_interval;           // the guest's meminfo markers
  DiskCache disk_cache = DiskCache::kNone;  // QEMU's cache mode for the guests' disk images
  bool disk_throttle = true;                // each guest's disk limited to host.disk.bandwidth

  static LabConfig from_params(Params p);
};

// The `lab:` section's reader, for load_scenario.
ScenarioExtension lab_extension();

// The lab settings of a scenario loaded with lab_extension(); a LabError otherwise.
const LabConfig& lab_config(const Scenario& s);

}  // namespace memvirt
