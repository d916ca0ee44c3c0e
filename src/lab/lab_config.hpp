// The scenario's `lab:` section: how the real lab runs the scenario's guests (QEMU binary,
// accelerator, image, timeouts). Every run of the command reads it (lab_extension()), so one
// file drives both backends and a misspelt key is an error on either.
#pragma once

#include <string>

#include "core/params.hpp"
#include "scenario/scenario.hpp"
#include "core/types.hpp"

namespace memvirt {

struct LabConfig {
  std::string qemu;          // QEMU system emulator: name in PATH or a path
  std::string accel;         // auto | kvm | tcg
  std::string image;         // image folder; empty: lab-image in the build folder
  std::string kernel;        // guest kernel; empty: newest /boot/vmlinuz-*-cloud-amd64
  std::string kernel_args;   // appended to the guest kernel command line
  std::string guest_thp;     // guest transparent huge pages: default | always | madvise | never
  Duration boot_timeout;     // launch to the guest's first marker
  Duration silence_timeout;  // longest a booted guest may go without a marker
  Duration qmp_timeout;      // per QMP command
  Duration guest_sample_interval;  // the guest's meminfo markers

  static LabConfig from_params(Params p);
};

// The `lab:` section's reader, for load_scenario.
ScenarioExtension lab_extension();

// The lab settings of a scenario loaded with lab_extension(); a LabError otherwise.
const LabConfig& lab_config(const Scenario& s);

}  // namespace memvirt
