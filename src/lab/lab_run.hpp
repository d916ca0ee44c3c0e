// The real lab: runs a scenario's guests as QEMU processes (one per VM) booting the lab's
// image, drives them (balloon targets over QMP, host KSM through sysfs), and measures them
// (each QEMU's guest RAM and resident memory, CPU time, host free memory, KSM counters,
// the guests' own meminfo) into the same results the simulator writes.
//
// Failure handling: a guest that crashes, hangs, stays silent or reports an error, QEMU
// exiting early, a QMP socket closing, or the stop signal end the run with a LabError naming
// the VM; every QEMU process is then ended by its PID, host KSM settings are restored and
// the run's temporary files (QMP sockets, per-guest initramfs) are removed. Nothing is
// written outside the output folder and the image folder.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lab/markers.hpp"
#include "scenario/experiment.hpp"
#include "scenario/scenario.hpp"

namespace memvirt {

struct LabRunOptions {
  std::string out_dir;         // created; guest consoles and QEMU logs go to vmN/ in it
  std::string guest_programs;  // memvirt-guest; empty: beside the running memvirt
  int stop_fd = -1;            // when readable, the run stops (the command's signalfd)
  std::function<void(const std::string&)> log;  // progress lines; may be empty
  // Messages the user must see even without progress lines (host settings put back from an
  // interrupted run); may be empty.
  std::function<void(const std::string&)> notice;
};

struct LabRun {
  ExperimentResult result;  // what results.json and timeseries.csv hold
  std::vector<Marker> markers;
  nlohmann::json info;  // lab.json: accelerator, kernel, QEMU, per-VM boot and CPU, notes
};

LabRun run_lab(const Scenario& s, const LabRunOptions& opt);

// results.json, timeseries.csv and config.yaml as the simulator writes them, plus
// markers.csv and lab.json.
void write_lab_outputs(const std::string& dir, const Scenario& s, const LabRun& run);

// The accelerator to use: "kvm" when /dev/kvm exists and boots the image's kernel to its
// first marker, else "tcg"; `reason` says why. The probe's answer is cached in the image
// folder. `requested` is the scenario's lab.accel (auto, kvm, tcg).
std::string choose_accel(const std::string& requested, const std::string& qemu,
                         const std::string& image_dir, std::string* reason);

}  // namespace memvirt
