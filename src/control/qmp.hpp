// A client of QEMU's machine protocol (QMP): JSON messages, one per line, over a UNIX socket.
// On connecting, the server sends a greeting ({"QMP": {...}}); the client must negotiate
// capabilities (qmp_capabilities) before any other command. Each command carries an id; the
// reply is {"return": ...} or {"error": {"class", "desc"}}. Asynchronous events
// ({"event": ...}) can arrive at any time and are kept for take_events().
//
// Every wait has a deadline. A malformed message, a reply that is neither return nor error,
// a reply for another id, a closed socket or a deadline passing throws QmpError whose
// message starts with the client's name (the VM), so the user knows which guest failed.
// A reply to an earlier command whose deadline passed is dropped when it comes, so one slow
// answer does not put every later reply one command behind.
//
// Used by the lab (lab/lab_run.cpp) and by `memvirt control` (control/qmp_host.hpp).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace memvirt {

class QmpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The connection is gone: QEMU closed the socket (it exited), or it was closed here. Nothing
// more can be asked of this client; other QmpErrors leave it usable.
class QmpDisconnected : public QmpError {
 public:
  using QmpError::QmpError;
};

class QmpClient {
 public:
  using Millis = std::chrono::milliseconds;

  // Connects to the server listening at `path` ("@name": in the abstract namespace),
  // retrying while the socket does not exist yet or refuses (QEMU is starting), then reads
  // the greeting and negotiates capabilities.
  static QmpClient connect_unix(const std::string& path, std::string name, Millis timeout);

  // Takes ownership of a connected socket and negotiates on it.
  QmpClient(int fd, std::string name, Millis timeout);
  ~QmpClient();
  QmpClient(QmpClient&& o) noexcept;
  QmpClient& operator=(QmpClient&& o) noexcept;
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Runs a command; returns its "return" value. Throws QmpError on an error reply (with the
  // server's class and description) and on any protocol failure.
  nlohmann::json execute(const std::string& command,
                         const nlohmann::json& arguments = nlohmann::json::object());
  nlohmann::json execute(const std::string& command, const nlohmann::json& arguments,
                         Millis timeout);

  // Events received so far, oldest first; the list is then empty.
  std::vector<nlohmann::json> take_events();
  [[nodiscard]] const nlohmann::json& greeting() const { return greeting_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  // The name errors start with from now on (a guest known by another name once connected).
  void set_name(std::string name) { name_ = std::move(name); }
  [[nodiscard]] bool is_open() const { return fd_ >= 0; }
  // The process at the other end of the socket (SO_PEERCRED: QEMU's pid, which /proc reads
  // need); nullopt when the kernel does not say (a peer in another pid namespace).
  [[nodiscard]] std::optional<pid_t> peer_pid() const;
  void close();

 private:
  // The next message that is not an event; events are kept.
  nlohmann::json read_reply(std::chrono::steady_clock::time_point deadline,
                            const std::string& waiting_for);
  nlohmann::json read_message(std::chrono::steady_clock::time_point deadline,
                              const std::string& waiting_for);
  void send_line(const std::string& line, std::chrono::steady_clock::time_point deadline);
  [[noreturn]] void fail(const std::string& what) const;
  // Closes the connection and throws QmpDisconnected.
  [[noreturn]] void lost(const std::string& what);

  int fd_ = -1;
  std::string name_;
  Millis timeout_;
  std::string buffer_;
  std::uint64_t next_id_ = 1;
  nlohmann::json greeting_;
  std::vector<nlohmann::json> events_;
};

}  // namespace memvirt
