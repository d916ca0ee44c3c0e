// The QMP client against a scripted fake server on a socket pair: the handshake, replies,
// events, and every way a reply can be wrong.
#include "control/qmp.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

namespace memvirt {
namespace {

using Millis = std::chrono::milliseconds;
constexpr const char* kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})"
    "\r\n";

// The server side of the pair: reads one command line, answers with a script.
class FakeServer {
 public:
  FakeServer() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    client_fd = sv[0];
    server_fd_ = sv[1];
  }
  ~FakeServer() {
    if (thread_.joinable()) thread_.join();
    if (server_fd_ >= 0) close(server_fd_);
  }
  // Runs `script` on the server side in a thread.
  void run(std::function<void(FakeServer&)> script) {
    thread_ = std::thread([this, script] { script(*this); });
  }
  void send(const std::string& s) const {
    ASSERT_EQ(write(server_fd_, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  // The next command line the client sent ("" when it closed).
  std::string receive() {
    std::string line;
    char c = 0;
    while (read(server_fd_, &c, 1) == 1) {
      if (c == '\n') return line;
      line += c;
    }
    return line;
  }
  void hang_up() {
    close(server_fd_);
    server_fd_ = -1;
  }
  int client_fd = -1;

 private:
  int server_fd_ = -1;
  std::thread thread_;
};

// Greets and accepts qmp_capabilities, as QEMU does.
void handshake(FakeServer& s) {
  s.send(kGreeting);
  const std::string cmd = s.receive();
  EXPECT_NE(cmd.find("\"qmp_capabilities\""), std::string::npos) << cmd;
  s.send(R"({"return": {}, "id": 1})"
         "\r\n");
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const QmpError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Qmp, NegotiatesAndReturnsReplies) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    const std::string cmd = srv.receive();
    EXPECT_NE(cmd.find("\"query-balloon\""), std::string::npos) << cmd;
    EXPECT_NE(cmd.find("\"id\":2"), std::string::npos) << cmd;
    // An event first: the client keeps it and goes on waiting for its reply.
    srv.send(
        R"({"event": "BALLOON_CHANGE", "data": {"actual": 1073741824}, "timestamp": {"seconds": 1, "microseconds": 2}})"
        "\n");
    srv.send(R"({"return": {"actual": 536870912}, "id": 2})"
             "\r\n");
    const std::string cmd2 = srv.receive();
    EXPECT_NE(cmd2.find("\"arguments\":{\"value\":536870912}"), std::string::npos) << cmd2;
    srv.send(R"({"return": {}, "id": 3})"
             "\n");
  });
  QmpClient c(s.client_fd, "vm7", Millis(2000));
  EXPECT_EQ(c.greeting()["QMP"]["version"]["qemu"]["major"], 7);
  const auto r = c.execute("query-balloon");
  EXPECT_EQ(r["actual"], 536870912);
  const auto events = c.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["event"], "BALLOON_CHANGE");
  EXPECT_TRUE(c.take_events().empty());
  EXPECT_TRUE(c.execute("balloon", {{"value", 536870912}}).empty());
}

TEST(Qmp, ErrorReplyNamesTheVmClassAndDescription) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();
    srv.send(
        R"({"error": {"class": "DeviceNotActive", "desc": "No balloon device has been activated"}, "id": 2})"
        "\n");
  });
  QmpClient c(s.client_fd, "vm3", Millis(2000));
  const std::string e = error_of([&] { c.execute("balloon", {{"value", 1}}); });
  EXPECT_NE(e.find("vm3: QMP: balloon failed: DeviceNotActive: No balloon device"),
            std::string::npos)
      << e;
}

TEST(Qmp, MalformedJsonIsAnError) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();
    srv.send("{\"return\": {\"actual\": 12\n");
  });
  QmpClient c(s.client_fd, "vm0", Millis(2000));
  const std::string e = error_of([&] { c.execute("query-balloon"); });
  EXPECT_NE(e.find("vm0: QMP: malformed JSON while waiting for the reply to query-balloon"),
            std::string::npos)
      << e;
}

TEST(Qmp, ReplyWithoutReturnOrErrorIsAnError) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();
    srv.send(R"({"id": 2, "result": 5})"
             "\n");
  });
  QmpClient c(s.client_fd, "vm0", Millis(2000));
  const std::string e = error_of([&] { c.execute("query-balloon"); });
  EXPECT_NE(e.find("unexpected reply to query-balloon"), std::string::npos) << e;
}

TEST(Qmp, ReplyForAnotherIdIsAnError) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();
    srv.send(R"({"return": {}, "id": 99})"
             "\n");
  });
  QmpClient c(s.client_fd, "vm0", Millis(2000));
  const std::string e = error_of([&] { c.execute("query-balloon"); });
  EXPECT_NE(e.find("reply for id 99"), std::string::npos) << e;
}

TEST(Qmp, NonObjectReplyIsAnError) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();
    srv.send("[1, 2, 3]\n");
  });
  QmpClient c(s.client_fd, "vm0", Millis(2000));
  const std::string e = error_of([&] { c.execute("query-balloon"); });
  EXPECT_NE(e.find("expected a JSON object"), std::string::npos) << e;
}

TEST(Qmp, SocketClosedMidCommandIsAnError) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();
    srv.hang_up();
  });
  QmpClient c(s.client_fd, "vm2", Millis(2000));
  const std::string e = error_of([&] { c.execute("query-balloon"); });
  EXPECT_NE(e.find("vm2: QMP: socket closed by QEMU while waiting for the reply to query-balloon"),
            std::string::npos)
      << e;
}

// QmpDisconnected (the guest is gone), not a plain QmpError (this reply was bad), and the
// client is closed: the caller drops the guest.
TEST(Qmp, AClosedSocketIsADisconnection) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();
    srv.hang_up();
  });
  QmpClient c(s.client_fd, "vm2", Millis(2000));
  EXPECT_TRUE(c.is_open());
  EXPECT_THROW(c.execute("query-balloon"), QmpDisconnected);
  EXPECT_FALSE(c.is_open());
  EXPECT_THROW(c.execute("query-balloon"), QmpDisconnected);
}

TEST(Qmp, AnErrorReplyIsNoDisconnection) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();
    srv.send(R"({"error": {"class": "GenericError", "desc": "no"}, "id": 2})"
             "\n");
  });
  QmpClient c(s.client_fd, "vm2", Millis(2000));
  try {
    c.execute("query-balloon");
    ADD_FAILURE() << "no error";
  } catch (const QmpDisconnected&) {
    ADD_FAILURE() << "an error reply is not a disconnection";
  } catch (const QmpError&) {
  }
  EXPECT_TRUE(c.is_open());
}

// A reply that comes after its command timed out is dropped when the next reply is awaited,
// instead of being taken for it.
TEST(Qmp, ALateReplyToATimedOutCommandIsDropped) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();  // id 2: answered only after the client gave up
    std::this_thread::sleep_for(Millis(200));
    srv.send(R"({"return": {"actual": 1}, "id": 2})"
             "\n");
    srv.receive();  // id 3
    srv.send(R"({"return": {"actual": 3}, "id": 3})"
             "\n");
  });
  QmpClient c(s.client_fd, "vm0", Millis(2000));
  EXPECT_THROW(c.execute("query-balloon", {}, Millis(50)), QmpError);
  std::this_thread::sleep_for(Millis(250));
  EXPECT_EQ(c.execute("query-balloon")["actual"], 3);
}

TEST(Qmp, PeerPidIsTheServersProcess) {
  FakeServer s;
  s.run([](FakeServer& srv) { handshake(srv); });
  QmpClient c(s.client_fd, "vm0", Millis(2000));
  EXPECT_EQ(c.peer_pid(), getpid());  // a socket pair of this process
}

TEST(Qmp, SilentServerTimesOut) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    handshake(srv);
    srv.receive();  // and never answers
  });
  QmpClient c(s.client_fd, "vm0", Millis(2000));
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e = error_of([&] { c.execute("query-balloon", {}, Millis(150)); });
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(e.find("no answer within"), std::string::npos) << e;
  EXPECT_GE(took, Millis(140));
  EXPECT_LT(took, Millis(2000));
}

TEST(Qmp, MissingGreetingFailsTheHandshake) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    srv.send(R"({"return": {}})"
             "\n");
  });
  const std::string e = error_of([&] { QmpClient c(s.client_fd, "vm0", Millis(2000)); });
  EXPECT_NE(e.find("expected a greeting"), std::string::npos) << e;
}

TEST(Qmp, RefusedCapabilitiesFailTheHandshake) {
  FakeServer s;
  s.run([](FakeServer& srv) {
    srv.send(kGreeting);
    srv.receive();
    srv.send(R"({"error": {"class": "CommandNotFound", "desc": "nope"}, "id": 1})"
             "\n");
  });
  const std::string e = error_of([&] { QmpClient c(s.client_fd, "vm0", Millis(2000)); });
  EXPECT_NE(e.find("qmp_capabilities failed: CommandNotFound"), std::string::npos) << e;
}

TEST(Qmp, ConnectingToNoSocketTimesOutNamingThePath) {
  const std::string e = error_of(
      [] { QmpClient::connect_unix("/nonexistent/memvirt-qmp.sock", "vm5", Millis(100)); });
  EXPECT_NE(e.find("vm5: cannot connect to QMP socket /nonexistent/memvirt-qmp.sock"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace memvirt
