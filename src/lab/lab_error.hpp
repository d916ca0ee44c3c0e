// Failures of a real lab run that are not errors in the scenario file: a guest that crashes,
// hangs or stays silent, QEMU exiting early, a QMP socket that closes, a host that lacks what
// the run needs. The message names the VM when one is at fault; the command prints it on one
// line and exits with status 3.
#pragma once

#include <stdexcept>
#include <string>

namespace memvirt {

class LabError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace memvirt
