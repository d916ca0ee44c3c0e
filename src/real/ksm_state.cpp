#include "real/ksm_state.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "real/ksm_sysfs.hpp"

namespace memvirt {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "memvirt-ksm-state/1";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The root as one key: absolute, with symbolic links resolved where the path exists.
std::string root_key(const fs::path& root) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(root), ec);
  if (ec) p = fs::absolute(root).lexically_normal();
  return p.string();
}

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// State and start time of a process from <proc>/<pid>/stat; nullopt when it has none.
struct ProcStat {
  char state = '?';
  std::uint64_t start = 0;
};
std::optional<ProcStat> read_proc_stat(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  // The name (field 2) may hold spaces and parentheses: the fields resume after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  ProcStat s;
  rest >> s.state;
  std::string field;
  for (int i = 4; i < 22 && rest >> field; ++i) {
  }
  rest >> s.start;  // field 22: starttime
  if (!rest) return std::nullopt;
  return s;
}

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A knob is a file directly in the root: a state file naming "../x" must not write elsewhere.
bool plain_name(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (const char c : s) {
    if (c == '/' || c == '\0' || c == '\n') return false;
  }
  return true;
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);  // best effort: the rename is already done
    ::close(fd);
  }
}

}  // namespace

fs::path ksm_state_dir_from_environment() {
  if (const std::string d = env("MEMVIRT_STATE_DIR"); !d.empty()) return d;
  const fs::path system = "/var/lib/memvirt";
  std::error_code ec;
  if (fs::is_directory(system, ec) ? ::access(system.c_str(), W_OK) == 0
                                   : ::access(system.parent_path().c_str(), W_OK) == 0) {
    return system;
  }
  if (const std::string x = env("XDG_STATE_HOME"); !x.empty() && fs::path(x).is_absolute()) {
    return fs::path(x) / "memvirt";
  }
  if (const std::string home = env("HOME"); !home.empty()) {
    return fs::path(home) / ".local" / "state" / "memvirt";
  }
  throw KsmStateError(
      "no folder for memvirt's state file (neither /var/lib/memvirt is writable nor HOME is "
      "set): set MEMVIRT_STATE_DIR");
}

fs::path KsmStateStore::file_for(const fs::path& root) const {
  const std::string key = root_key(root);
  std::string escaped;
  for (const char c : key) {
    if (c == '/') {
      if (!escaped.empty() && escaped.back() != '-') escaped += '-';
    } else if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_') {
      escaped += c;
    } else {
      escaped += '_';
    }
  }
  while (!escaped.empty() && escaped.back() == '-') escaped.pop_back();
  // Readable, short, and unique: the end of the path, and a hash of all of it.
  if (escaped.size() > 64) {
    escaped = escaped.substr(escaped.size() - 64);
    if (const auto dash = escaped.find('-');
        dash != std::string::npos && dash + 1 < escaped.size()) {
      escaped = escaped.substr(dash + 1);  // whole folder names only
    }
  }
  return dir_ / fmt::format("ksm-{}-{:08x}.json", escaped,
                            static_cast<std::uint32_t>(fnv1a(key) & 0xffffffffU));
}

std::optional<KsmSavedState> KsmStateStore::load(const fs::path& root) const {
  const fs::path file = file_for(root);
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(file, ec))) return std::nullopt;
  std::ifstream in(file);
  if (!in) {
    throw KsmStateError(
        fmt::format("cannot read KSM state file {}: {}", file.string(), std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  const auto corrupt = [&](const std::string& why) {
    return KsmStateError(fmt::format(
        "{}: not a valid memvirt KSM state file ({}); it was left in place: check the host's "
        "KSM settings in {}, then remove it",
        file.string(), why, root.string()));
  };
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::exception& e) {
    throw corrupt(e.what());
  }
  KsmSavedState s;
  try {
    if (!j.is_object()) throw corrupt("not a JSON object");
    if (j.value("format", std::string()) != kFormat) {
      throw corrupt(fmt::format("format is not {}", kFormat));
    }
    s.root = j.at("sysfs_root").get<std::string>();
    s.pid = j.at("pid").get<long>();
    s.pid_start = j.value("pid_start_ticks", std::uint64_t{0});
    s.process = j.value("process", std::string());
    s.written = j.value("written", std::string());
    for (const json& k : j.at("settings")) {
      KsmKnobState ks{k.at("knob").get<std::string>(), k.at("original").get<std::string>(),
                      k.at("set").get<std::string>()};
      if (!plain_name(ks.knob)) throw corrupt(fmt::format("knob name '{}'", ks.knob));
      s.knobs.push_back(std::move(ks));
    }
  } catch (const json::exception& e) {
    throw corrupt(e.what());
  }
  if (s.pid <= 0) throw corrupt(fmt::format("pid {}", s.pid));
  if (root_key(s.root) != root_key(root)) {
    throw corrupt(fmt::format("it is the state of {}, not of {}", s.root.string(), root.string()));
  }
  return s;
}

void KsmStateStore::save(const KsmSavedState& s) const {
  const fs::path file = file_for(s.root);
  const auto fail = [&](const std::string& why) {
    return KsmStateError(
        fmt::format("cannot write KSM state file {}: {} (set MEMVIRT_STATE_DIR "
                    "to a writable folder); KSM settings left unchanged",
                    file.string(), why));
  };
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw fail(ec.message());
  json j;
  j["format"] = kFormat;
  j["sysfs_root"] = s.root.string();
  j["pid"] = s.pid;
  j["pid_start_ticks"] = s.pid_start;
  j["process"] = s.process;
  j["written"] = s.written;
  j["settings"] = json::array();
  for (const KsmKnobState& k : s.knobs) {
    j["settings"].push_back({{"knob", k.knob}, {"original", k.original}, {"set", k.set}});
  }
  const std::string text = j.dump(2) + "\n";
  const fs::path temp = dir_ / fmt::format(".{}.partial-{}", file.filename().string(), ::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw fail(std::strerror(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(temp.c_str());
      throw fail(std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    throw fail(std::strerror(err));
  }
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    throw fail(std::strerror(err));
  }
  fsync_dir(dir_);
}

void KsmStateStore::remove(const fs::path& root) const {
  const fs::path file = file_for(root);
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    throw KsmStateError(
        fmt::format("cannot remove KSM state file {}: {}", file.string(), std::strerror(errno)));
  }
  fsync_dir(dir_);
}

KsmSavedState ksm_state_of_this_process(const fs::path& root) {
  KsmSavedState s;
  s.root = root;
  s.pid = ::getpid();
  if (const auto st = read_proc_stat("/proc/self/stat")) s.pid_start = st->start;
  std::ifstream comm("/proc/self/comm");
  if (!comm || !std::getline(comm, s.process)) s.process = "memvirt";
  s.written = utc_now();
  return s;
}

bool ksm_state_owner_alive(const KsmSavedState& s, const fs::path& proc) {
  if (s.pid <= 0) return false;
  if (const auto st = read_proc_stat(proc / std::to_string(s.pid) / "stat")) {
    if (st->state == 'Z' || st->state == 'X') return false;  // exited, not yet reaped
    return s.pid_start == 0 || st->start == s.pid_start;     // else the pid was reused
  }
  std::error_code ec;
  if (fs::exists(proc / "self" / "stat", ec)) return false;  // /proc works: no such process
  // No /proc: the pid alone.
  return ::kill(static_cast<pid_t>(s.pid), 0) == 0 || errno == EPERM;
}

std::optional<std::string> recover_ksm_settings(const KsmSysfs& fs, const KsmStateStore& store) {
  const std::optional<KsmSavedState> s = store.load(fs.root());
  if (!s) return std::nullopt;
  const fs::path file = store.file_for(fs.root());
  if (ksm_state_owner_alive(*s)) {
    throw KsmStateError(fmt::format(
        "another memvirt run (pid {}{}, since {}) owns the host's KSM settings in {}; not "
        "changing them (its state file: {})",
        s->pid, s->process.empty() ? "" : ", " + s->process, s->written, fs.root().string(),
        file.string()));
  }
  std::vector<std::string> restored, left;
  const auto put_back = [&](const KsmKnobState& k) {
    std::string now;
    try {
      now = fs.read(k.knob);
      if (now != k.original) {
        if (now != k.set) {
          // Neither the host's value nor the run's: another program set it since.
          left.push_back(fmt::format("{}={}", k.knob, now));
          return;
        }
        fs.write(k.knob, k.original);
      }
    } catch (const std::exception& e) {
      throw KsmStateError(
          fmt::format("cannot restore host KSM settings from {}: {}", file.string(), e.what()));
    }
    restored.push_back(fmt::format("{}={}", k.knob, k.original));
  };
  for (const KsmKnobState& k : s->knobs) {
    if (k.knob == "run") put_back(k);  // stop ksmd first
  }
  for (auto k = s->knobs.rbegin(); k != s->knobs.rend(); ++k) {
    if (k->knob != "run") put_back(*k);
  }
  store.remove(fs.root());
  std::string msg =
      fmt::format("restored host KSM settings left by an interrupted run (pid {})", s->pid);
  if (!restored.empty()) msg += ": " + fmt::format("{}", fmt::join(restored, ", "));
  if (!left.empty()) {
    msg += fmt::format("; left as another program set them since: {}", fmt::join(left, ", "));
  }
  return msg;
}

}  // namespace memvirt
