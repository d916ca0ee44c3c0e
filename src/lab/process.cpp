#include "lab/process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "lab/lab_error.hpp"

namespace memvirt {

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  }
  return fmt::format("wait status {}", status);
}

std::string ChildProcess::find_program(const std::string& program) {
  auto executable = [](const std::string& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) return executable(program) ? program : "";
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string p = dir + "/" + program;
    if (executable(p)) return p;
  }
  return {};
}

ChildProcess::ChildProcess(std::string name, const std::vector<std::string>& argv,
                           const std::string& stderr_file)
    : name_(std::move(name)) {
  // Everything the child needs is prepared before fork: after it, only async-signal-safe
  // calls (the lab may run in a multi-threaded process).
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out[2];
  int status_pipe[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(status_pipe, O_CLOEXEC) != 0) {
    throw LabError(fmt::format("{}: pipe: {}", name_, std::strerror(errno)));
  }
  const int err_fd = open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (err_fd < 0) {
    throw LabError(
        fmt::format("{}: cannot write {}: {}", name_, stderr_file, std::strerror(errno)));
  }
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    close(err_fd);
    throw LabError(fmt::format("{}: fork: {}", name_, std::strerror(e)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(null_fd, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execv(args[0], args.data());
    const int e = errno;
    (void)!write(status_pipe[1], &e, sizeof e);
    _exit(127);
  }
  pid_ = pid;
  close(out[1]);
  close(err_fd);
  if (null_fd >= 0) close(null_fd);
  close(status_pipe[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(status_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  close(status_pipe[0]);
  out_fd_ = out[0];
  fcntl(out_fd_, F_SETFL, fcntl(out_fd_, F_GETFL) | O_NONBLOCK);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    int st = 0;
    waitpid(pid_, &st, 0);
    exited_ = true;
    close_stdout();
    throw LabError(fmt::format("{}: cannot run {}: {}", name_, argv[0], std::strerror(exec_errno)));
  }
}

ChildProcess::~ChildProcess() {
  terminate();
  close_stdout();
}

void ChildProcess::close_stdout() {
  if (out_fd_ >= 0) close(out_fd_);
  out_fd_ = -1;
}

std::optional<std::string> ChildProcess::poll_exit() {
  if (exited_) return exit_;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    exit_ = describe_wait_status(status);
    return exit_;
  }
  return std::nullopt;
}

void ChildProcess::terminate(std::chrono::milliseconds grace) {
  if (exited_ || pid_ <= 0) return;
  if (poll_exit()) return;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (poll_exit()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exited_ = true;
  exit_ = describe_wait_status(status);
}

}  // namespace memvirt
