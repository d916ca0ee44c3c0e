// Helpers for tests that run the memvirt command itself ($MEMVIRT_BIN, which ctest sets) and
// read the files it leaves.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

extern char** environ;

namespace memvirt::testing {

inline std::string first_line(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

// Polls `done` every 20 ms for up to `limit`; its last answer.
inline bool wait_for(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// Starts `bin` with `args` (not counting argv[0]) in this process's environment with
// MEMVIRT_STATE_DIR set to `state_dir`, so that host settings it saves stay in the test's
// folder; its stdout and stderr go to `out` and `err`. -1 when it could not start.
inline pid_t spawn_memvirt(const std::string& bin, std::vector<std::string> args,
                           const std::filesystem::path& state_dir, const std::filesystem::path& out,
                           const std::filesystem::path& err) {
  args.insert(args.begin(), bin);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("MEMVIRT_STATE_DIR=", 0) != 0) env.emplace_back(*e);
  }
  env.push_back("MEMVIRT_STATE_DIR=" + state_dir.string());
  std::vector<char*> envp;
  std::vector<char*> argv;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  EXPECT_EQ(rc, 0) << bin << ": " << std::strerror(rc);
  return rc == 0 ? pid : -1;
}

// The exit status of `pid` once it ends; -1 when a signal ended it.
inline int wait_exit(pid_t pid) {
  if (pid < 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace memvirt::testing
