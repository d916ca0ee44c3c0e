#include "lab/ksm_host.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "lab/lab_error.hpp"

namespace memvirt {
namespace {

std::string read_value(const std::string& path) {
  std::ifstream in(path);
  std::string v;
  std::getline(in, v);
  return v;
}

// Empty on success, else the reason.
std::string write_value(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  if (!out) return std::strerror(errno);
  out << value << "\n";
  out.flush();
  if (!out) return std::strerror(errno);
  return {};
}

}  // namespace

KsmHost::~KsmHost() {
  restore();
}

void KsmHost::apply(const std::vector<std::pair<std::string, std::string>>& settings) {
  auto with_run = settings;
  with_run.emplace_back("run", "1");
  for (const auto& [name, value] : with_run) {
    const std::string path = dir_ + "/" + name;
    std::ifstream probe(path);
    if (!probe) {
      restore();
      throw LabError(
          fmt::format("host KSM: {} does not exist (is KSM built into the host "
                      "kernel, and is {} a setting of this kernel?)",
                      path, name));
    }
    const std::string old = read_value(path);
    if (const std::string why = write_value(path, value); !why.empty()) {
      restore();
      throw LabError(fmt::format("host KSM: cannot write {} to {}: {}", value, path, why));
    }
    saved_.push_back({name, old, read_value(path)});
  }
}

std::vector<std::string> KsmHost::restore() {
  std::vector<std::string> problems;
  std::vector<Saved> order;
  for (const auto& s : saved_) {
    if (s.name == "run") order.push_back(s);
  }
  for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
    if (it->name != "run") order.push_back(*it);
  }
  for (const auto& s : order) {
    const std::string path = dir_ + "/" + s.name;
    // Another program may have set KSM since (KSM is host-wide): its value stays.
    const std::string now = read_value(path);
    if (now != s.written) {
      problems.push_back(
          fmt::format("{} was changed by another process during the run (to {}); "
                      "left as it is instead of restoring {}",
                      path, now, s.old));
      continue;
    }
    if (const std::string why = write_value(path, s.old); !why.empty()) {
      problems.push_back(fmt::format("cannot restore {} to {}: {}", path, s.old, why));
    }
  }
  saved_.clear();
  return problems;
}

}  // namespace memvirt
