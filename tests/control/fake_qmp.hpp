// A scripted QEMU monitor for the controller's tests: a thread listening on a UNIX socket,
// speaking QMP as QEMU does (the greeting, qmp_capabilities, then one reply per command, with
// the command's id), from a small model of one guest with a virtio-balloon device, unless
// the script says otherwise for the next reply to a command (any line, garbage included, an
// error reply, or hanging up as a QEMU that exits does).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace memvirt::testing {

inline constexpr std::uint64_t kMiB = 1ULL << 20;
inline constexpr std::uint64_t kGiB = 1ULL << 30;

// The guest the fake QEMU answers for. Statistics are what the guest last reported; -1 is one
// it did not report. With `stats_follow_balloon` they are what it reports with an empty
// balloon, and the balloon's pages come out of free and available memory, and out of
// MemTotal only without deflate-on-oom, as in Linux's fill_balloon().
struct FakeGuest {
  std::string name;  // -name (query-name); empty: none
  std::uint64_t memory = 2 * kGiB;
  std::uint64_t actual = 2 * kGiB;
  std::int64_t polling = 0;    // guest-stats-polling-interval
  bool follow = true;          // the balloon reaches each target at once
  bool deflate_on_oom = true;  // the balloon device's deflate-on-oom
  bool stats_follow_balloon = false;
  bool reported = true;  // last-update is the time of the reply (false: 0, no report yet)
  std::int64_t last_update_offset = 0;  // added to it (positive: from the future)
  std::int64_t swap_in = 0, swap_out = 0, major_faults = 10, minor_faults = 1000;
  std::int64_t free = 1 * kGiB, total = 2 * kGiB, available = 1536 * kMiB, caches = 256 * kMiB;
};

class FakeQmp {
 public:
  explicit FakeQmp(std::filesystem::path socket, FakeGuest guest = {})
      : path_(std::move(socket)), guest_(std::move(guest)) {
    std::filesystem::remove(path_);
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    EXPECT_LT(path_.string().size(), sizeof addr.sun_path) << path_;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0)
        << path_ << ": " << std::strerror(errno);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    wake_read_ = p[0];
    wake_write_ = p[1];
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeQmp() { stop(); }
  FakeQmp(const FakeQmp&) = delete;
  FakeQmp& operator=(const FakeQmp&) = delete;

  // The next reply to `command` is `line` as it is ("__ID__" becomes the command's id).
  void script(const std::string& command, std::string line) {
    push(command, Scripted{std::move(line), false, std::nullopt});
  }
  // The next reply to `command` is {"return": value} (or an error reply) with its id.
  void script_return(const std::string& command, const nlohmann::json& value) {
    push(command, Scripted{"", false, nlohmann::json{{"return", value}}});
  }
  void script_error(const std::string& command, const std::string& cls, const std::string& desc) {
    push(command, Scripted{"", false, nlohmann::json{{"error", {{"class", cls}, {"desc", desc}}}}});
  }
  // QEMU exits when `command` next comes: the connection closes and the socket goes away.
  void hang_up_on(const std::string& command) { push(command, Scripted{"", true, std::nullopt}); }

  // Every command received, in order ({"execute": ..., "arguments": ...}).
  [[nodiscard]] std::vector<nlohmann::json> received() const {
    const std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  [[nodiscard]] std::size_t count(const std::string& command) const {
    std::size_t n = 0;
    for (const auto& c : received()) n += c.value("execute", "") == command ? 1 : 0;
    return n;
  }
  // The values of every `balloon` command, in order.
  [[nodiscard]] std::vector<std::uint64_t> balloons() const {
    std::vector<std::uint64_t> out;
    for (const auto& c : received()) {
      if (c.value("execute", "") == "balloon") out.push_back(c["arguments"]["value"]);
    }
    return out;
  }
  [[nodiscard]] FakeGuest guest() const {
    const std::lock_guard<std::mutex> lock(mu_);
    return guest_;
  }
  template <typename F>
  void change(F f) {
    const std::lock_guard<std::mutex> lock(mu_);
    f(guest_);
  }
  [[nodiscard]] bool gone() const { return gone_; }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  void stop() {
    if (thread_.joinable()) {
      const char c = 'x';
      EXPECT_EQ(write(wake_write_, &c, 1), 1);
      thread_.join();
    }
    for (int* fd : {&listen_fd_, &wake_read_, &wake_write_}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }

 private:
  struct Scripted {
    std::string line;
    bool hang_up = false;
    std::optional<nlohmann::json> reply;  // sent with the command's id
  };
  void push(const std::string& command, Scripted s) {
    const std::lock_guard<std::mutex> lock(mu_);
    scripts_[command].push_back(std::move(s));
  }

  void serve() {
    int client = -1;
    std::string buffer;
    for (;;) {
      pollfd p[2] = {{wake_read_, POLLIN, 0}, {client >= 0 ? client : listen_fd_, POLLIN, 0}};
      if (poll(p, 2, 5000) < 0 && errno == EINTR) continue;
      if (p[0].revents != 0) break;
      if (p[1].revents == 0) continue;
      if (client < 0) {
        client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) continue;
        send(
            client,
            R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}})"
            "\r\n");
        continue;
      }
      char chunk[4096];
      const ssize_t n = recv(client, chunk, sizeof chunk, 0);
      if (n <= 0) {
        close(client);
        client = -1;
        buffer.clear();
        continue;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
      for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
        const std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        if (!answer(client, line)) {
          // QEMU is gone: no connection, no socket. Said before the client can see the
          // connection close, so a test that saw it finds gone() true.
          gone_ = true;
          close(client);
          client = -1;
          close(listen_fd_);
          listen_fd_ = -1;
          std::error_code ec;
          std::filesystem::remove(path_, ec);
          wait_for_stop();
          return;
        }
      }
    }
    if (client >= 0) close(client);
  }

  void wait_for_stop() const {
    pollfd p{wake_read_, POLLIN, 0};
    while (poll(&p, 1, 5000) == 0) {
    }
  }

  static void send(int fd, const std::string& line) {
    const std::string l = line + "\n";
    // The client may have gone; a failed send is for the client to notice.
    if (::send(fd, l.data(), l.size(), MSG_NOSIGNAL) < 0) return;
  }

  // False: hang up.
  bool answer(int client, const std::string& line) {
    const nlohmann::json cmd = nlohmann::json::parse(line, nullptr, false);
    const std::string name = cmd.is_object() ? cmd.value("execute", "") : "";
    const nlohmann::json id = cmd.is_object() && cmd.contains("id") ? cmd["id"] : nlohmann::json();
    std::optional<Scripted> scripted;
    {
      const std::lock_guard<std::mutex> lock(mu_);
      received_.push_back(cmd);
      if (auto it = scripts_.find(name); it != scripts_.end() && !it->second.empty()) {
        scripted = it->second.front();
        it->second.pop_front();
      }
    }
    if (scripted) {
      if (scripted->hang_up) return false;
      if (scripted->reply) {
        nlohmann::json r = *scripted->reply;
        r["id"] = id;
        send(client, r.dump());
        return true;
      }
      std::string l = scripted->line;
      if (const auto at = l.find("__ID__"); at != std::string::npos) l.replace(at, 6, id.dump());
      send(client, l);
      return true;
    }
    send(client, model_reply(name, cmd).dump());
    return true;
  }

  nlohmann::json model_reply(const std::string& name, const nlohmann::json& cmd) {
    const std::lock_guard<std::mutex> lock(mu_);
    const nlohmann::json args = cmd.value("arguments", nlohmann::json::object());
    nlohmann::json ret = nlohmann::json::object();
    if (name == "qmp_capabilities") {
    } else if (name == "query-name") {
      if (!guest_.name.empty()) ret["name"] = guest_.name;
    } else if (name == "query-memory-size-summary") {
      ret["base-memory"] = guest_.memory;
      ret["plugged-memory"] = 0;
    } else if (name == "query-balloon") {
      ret["actual"] = guest_.actual;
    } else if (name == "qom-get" && args.value("property", "") == "guest-stats") {
      auto stat = [](std::int64_t v) {
        // QEMU 7 writes an unreported statistic (-1 here) as the unsigned all-ones value.
        return v == -1 ? nlohmann::json(UINT64_MAX) : nlohmann::json(v);
      };
      const auto ballooned = guest_.stats_follow_balloon
                                 ? static_cast<std::int64_t>(guest_.memory - guest_.actual)
                                 : 0;
      const auto less_balloon = [ballooned](std::int64_t v) {
        return v == -1 || ballooned == 0 ? v : std::max<std::int64_t>(0, v - ballooned);
      };
      const std::int64_t total = guest_.deflate_on_oom ? guest_.total : less_balloon(guest_.total);
      ret["stats"] = {{"stat-swap-in", stat(guest_.swap_in)},
                      {"stat-swap-out", stat(guest_.swap_out)},
                      {"stat-major-faults", stat(guest_.major_faults)},
                      {"stat-minor-faults", stat(guest_.minor_faults)},
                      {"stat-free-memory", stat(less_balloon(guest_.free))},
                      {"stat-total-memory", stat(total)},
                      {"stat-available-memory", stat(less_balloon(guest_.available))},
                      {"stat-disk-caches", stat(guest_.caches)},
                      {"stat-htlb-pgalloc", 0},
                      {"stat-htlb-pgfail", 0}};
      ret["last-update"] = guest_.reported ? static_cast<std::int64_t>(std::time(nullptr)) +
                                                 guest_.last_update_offset
                                           : 0;
    } else if (name == "qom-get" && args.value("property", "") == "guest-stats-polling-interval") {
      return {{"return", guest_.polling}, {"id", cmd["id"]}};
    } else if (name == "qom-get" && args.value("property", "") == "deflate-on-oom") {
      return {{"return", guest_.deflate_on_oom}, {"id", cmd["id"]}};
    } else if (name == "qom-set" && args.value("property", "") == "guest-stats-polling-interval") {
      guest_.polling = args.value("value", 0);
    } else if (name == "balloon") {
      if (guest_.follow)
        guest_.actual = std::min<std::uint64_t>(args.value("value", 0ULL), guest_.memory);
    } else {
      return {
          {"error",
           {{"class", "CommandNotFound"}, {"desc", "The command " + name + " has not been found"}}},
          {"id", cmd.value("id", nlohmann::json())}};
    }
    return {{"return", ret}, {"id", cmd["id"]}};
  }

  std::filesystem::path path_;
  mutable std::mutex mu_;
  FakeGuest guest_;
  std::map<std::string, std::deque<Scripted>> scripts_;
  std::vector<nlohmann::json> received_;
  std::atomic<bool> gone_{false};
  int listen_fd_ = -1, wake_read_ = -1, wake_write_ = -1;
  std::thread thread_;
};

// A /proc for the host adapter: meminfo, pressure/memory and this process's status.
struct FakeProc {
  explicit FakeProc(const std::filesystem::path& dir) : root(dir) {
    std::filesystem::create_directories(root / "pressure");
    std::filesystem::create_directories(root / std::to_string(getpid()));
    meminfo(16 * kGiB, 8 * kGiB, 1 * kGiB, 3 * kGiB);
    std::ofstream(root / "pressure" / "memory")
        << "some avg10=0.00 avg60=0.00 avg300=0.00 total=1500\n"
           "full avg10=0.00 avg60=0.00 avg300=0.00 total=700\n";
    std::ofstream(root / std::to_string(getpid()) / "status")
        << "Name:\tqemu-system-x86\nVmPeak:\t 3000000 kB\nVmRSS:\t  524288 kB\nThreads:\t5\n";
  }
  void meminfo(std::uint64_t total, std::uint64_t free, std::uint64_t buffers,
               std::uint64_t cached) const {
    std::ofstream(root / "meminfo") << "MemTotal:       " << total / 1024 << " kB\n"
                                    << "MemFree:        " << free / 1024 << " kB\n"
                                    << "MemAvailable:   " << (free + cached) / 1024 << " kB\n"
                                    << "Buffers:        " << buffers / 1024 << " kB\n"
                                    << "Cached:         " << cached / 1024 << " kB\n"
                                    << "SwapCached:            0 kB\n";
  }
  std::filesystem::path root;
};

}  // namespace memvirt::testing
