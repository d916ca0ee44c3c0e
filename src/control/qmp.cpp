#include "control/qmp.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <thread>

namespace memvirt {
namespace {

using Clock = std::chrono::steady_clock;

// A QMP message larger than this is not a reply to anything memvirt asks.
constexpr std::size_t kMaxMessage = 4 << 20;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

std::string shorten(const std::string& s) {
  return s.size() <= 200 ? s : s.substr(0, 200) + "...";
}

}  // namespace

QmpClient QmpClient::connect_unix(const std::string& path, std::string name, Millis timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    throw QmpError(fmt::format("{}: QMP socket path is longer than {} bytes: {}", name,
                               sizeof addr.sun_path - 1, path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // "@name": the abstract namespace, whose names start with a NUL byte and are not
  // NUL-terminated (the address length bounds them).
  const bool abstract = !path.empty() && path[0] == '@';
  if (abstract) addr.sun_path[0] = '\0';
  const auto addr_len = static_cast<socklen_t>(
      abstract ? offsetof(sockaddr_un, sun_path) + path.size() : sizeof addr);
  const auto deadline = Clock::now() + timeout;
  int last_error = 0;
  for (;;) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw QmpError(fmt::format("{}: socket: {}", name, std::strerror(errno)));
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) == 0) {
      return QmpClient(fd, std::move(name), timeout);
    }
    last_error = errno;
    ::close(fd);
    if (last_error != ENOENT && last_error != ECONNREFUSED) break;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw QmpError(fmt::format("{}: cannot connect to QMP socket {} within {} ms: {}", name, path,
                             timeout.count(), std::strerror(last_error)));
}

QmpClient::QmpClient(int fd, std::string name, Millis timeout)
    : fd_(fd), name_(std::move(name)), timeout_(timeout) {
  try {
    const auto deadline = Clock::now() + timeout_;
    greeting_ = read_message(deadline, "the greeting");
    if (!greeting_.is_object() || !greeting_.contains("QMP")) {
      fail("expected a greeting {\"QMP\": ...}, got " + shorten(greeting_.dump()));
    }
    const nlohmann::json r = execute("qmp_capabilities", nlohmann::json::object(), timeout_);
    if (!r.is_object() || !r.empty()) {
      fail("unexpected reply to qmp_capabilities: " + shorten(r.dump()));
    }
  } catch (...) {
    close();
    throw;
  }
}

QmpClient::~QmpClient() {
  close();
}

QmpClient::QmpClient(QmpClient&& o) noexcept
    : fd_(o.fd_),
      name_(std::move(o.name_)),
      timeout_(o.timeout_),
      buffer_(std::move(o.buffer_)),
      next_id_(o.next_id_),
      greeting_(std::move(o.greeting_)),
      events_(std::move(o.events_)) {
  o.fd_ = -1;
}

QmpClient& QmpClient::operator=(QmpClient&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = o.fd_;
    o.fd_ = -1;
    name_ = std::move(o.name_);
    timeout_ = o.timeout_;
    buffer_ = std::move(o.buffer_);
    next_id_ = o.next_id_;
    greeting_ = std::move(o.greeting_);
    events_ = std::move(o.events_);
  }
  return *this;
}

void QmpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void QmpClient::fail(const std::string& what) const {
  throw QmpError(fmt::format("{}: QMP: {}", name_, what));
}

void QmpClient::lost(const std::string& what) {
  close();
  throw QmpDisconnected(fmt::format("{}: QMP: {}", name_, what));
}

std::optional<pid_t> QmpClient::peer_pid() const {
  if (fd_ < 0) return std::nullopt;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0) {
    return std::nullopt;
  }
  return cred.pid;
}

void QmpClient::send_line(const std::string& line, Clock::time_point deadline) {
  if (fd_ < 0) lost("connection is closed");
  std::size_t done = 0;
  while (done < line.size()) {
    pollfd p{fd_, POLLOUT, 0};
    const int r = poll(&p, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) fail("timed out sending a command");
    const ssize_t n = send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) lost(fmt::format("socket closed while sending ({})", std::strerror(errno)));
    done += static_cast<std::size_t>(n);
  }
}

nlohmann::json QmpClient::read_message(Clock::time_point deadline, const std::string& waiting_for) {
  if (fd_ < 0) lost("connection is closed");
  for (;;) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      try {
        return nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error&) {
        fail(fmt::format("malformed JSON while waiting for {}: {}", waiting_for, shorten(line)));
      }
    }
    if (buffer_.size() > kMaxMessage) {
      fail(fmt::format("message longer than {} bytes while waiting for {}", kMaxMessage,
                       waiting_for));
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(fmt::format("poll: {}", std::strerror(errno)));
    if (r == 0) {
      fail(fmt::format("no answer within {} ms while waiting for {}", timeout_.count(),
                       waiting_for));
    }
    char chunk[4096];
    const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0 && errno == ECONNRESET) {
      lost(fmt::format("connection reset while waiting for {}", waiting_for));
    }
    if (n < 0)
      fail(fmt::format("read error while waiting for {}: {}", waiting_for, std::strerror(errno)));
    if (n == 0) {
      lost(fmt::format("socket closed by QEMU while waiting for {}", waiting_for));
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

nlohmann::json QmpClient::read_reply(Clock::time_point deadline, const std::string& waiting_for) {
  for (;;) {
    nlohmann::json m = read_message(deadline, waiting_for);
    if (!m.is_object()) fail("expected a JSON object, got " + shorten(m.dump()));
    if (m.contains("event")) {
      events_.push_back(std::move(m));
      continue;
    }
    return m;
  }
}

nlohmann::json QmpClient::execute(const std::string& command, const nlohmann::json& arguments) {
  return execute(command, arguments, timeout_);
}

nlohmann::json QmpClient::execute(const std::string& command, const nlohmann::json& arguments,
                                  Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::uint64_t id = next_id_++;
  nlohmann::json msg = {{"execute", command}, {"id", id}};
  if (!arguments.empty()) msg["arguments"] = arguments;
  send_line(msg.dump() + "\n", deadline);
  const std::string what = fmt::format("the reply to {}", command);
  nlohmann::json reply = read_reply(deadline, what);
  // A late reply to a command that timed out: its caller has given up on it.
  while (reply.contains("id") && reply["id"].is_number_unsigned() &&
         reply["id"].get<std::uint64_t>() < id) {
    reply = read_reply(deadline, what);
  }
  if (reply.contains("id") && reply["id"] != nlohmann::json(id)) {
    fail(fmt::format("reply for id {} while waiting for {} (id {})", reply["id"].dump(), what, id));
  }
  if (reply.contains("error")) {
    const nlohmann::json& e = reply["error"];
    auto text = [&](const char* key, const std::string& def) {
      return e.is_object() && e.contains(key) && e[key].is_string() ? e[key].get<std::string>()
                                                                    : def;
    };
    const std::string cls = text("class", "?");
    const std::string desc = text("desc", shorten(e.dump()));
    fail(fmt::format("{} failed: {}: {}", command, cls, desc));
  }
  if (!reply.contains("return")) {
    fail(fmt::format("unexpected reply to {} (no return, error or event): {}", command,
                     shorten(reply.dump())));
  }
  return reply["return"];
}

std::vector<nlohmann::json> QmpClient::take_events() {
  std::vector<nlohmann::json> out;
  out.swap(events_);
  return out;
}

}  // namespace memvirt
