// A child process the lab starts and must end: QEMU. Started in its own process group (so a
// Ctrl-C at the terminal reaches memvirt, which then ends it in order), with the parent-death
// signal set (so it cannot outlive a memvirt that is killed outright), its standard output on
// a pipe the lab reads and its standard error in a file. Ended by its PID only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace memvirt {

class ChildProcess {
 public:
  // Starts argv[0] (an absolute path) with stdin from /dev/null, stdout on a pipe and stderr
  // appended to `stderr_file`. Throws LabError naming `name` when the program cannot start.
  ChildProcess(std::string name, const std::vector<std::string>& argv,
               const std::string& stderr_file);
  // Ends the process if it still runs (terminate()).
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  // The read end of the child's stdout (non-blocking); -1 once closed.
  [[nodiscard]] int stdout_fd() const { return out_fd_; }
  void close_stdout();

  // Non-blocking: the exit description once the process has ended ("exit status 1",
  // "killed by signal 9"), nullopt while it runs.
  std::optional<std::string> poll_exit();
  [[nodiscard]] bool running() const { return !exited_; }
  // SIGTERM, then SIGKILL after `grace`; waits for the process. Safe to call twice.
  void terminate(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

  // The absolute path of `program` (as given when it contains '/', else searched in PATH);
  // empty when not found.
  static std::string find_program(const std::string& program);

 private:
  std::string name_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  bool exited_ = false;
  std::string exit_;
};

// "exit status N" or "killed by signal N (NAME)" from a waitpid status.
std::string describe_wait_status(int status);

}  // namespace memvirt
