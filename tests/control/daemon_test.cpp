// The daemon of `memvirt control` in this process, against scripted QEMU monitors
// (fake_qmp.hpp), with memvirt's controller ticking every 50 ms: a dry run changes nothing
// (no `balloon`, no `qom-set`); a live run sets clamped targets within each guest's limits;
// a guest that goes away is dropped while the others go on; a folder is scanned each tick; a
// stop ends it without touching the balloons.
#include "control/daemon.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <thread>

#include "core/error.hpp"
#include "fake_qmp.hpp"
#include "policy/controller.hpp"
#include "policy/mom.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;
using testing::FakeGuest;
using testing::FakeProc;
using testing::FakeQmp;
using testing::kGiB;
using testing::kMiB;

// Records what the daemon reports; read only after run() returns (or under `mu`).
class Events final : public ControlSink {
 public:
  void record(Duration /*t*/, const ControlEvent& e) override {
    const std::lock_guard<std::mutex> lock(mu);
    all.push_back(e);
  }
  [[nodiscard]] std::vector<ControlEvent> of(ControlEvent::Kind k, const std::string& vm) const {
    const std::lock_guard<std::mutex> lock(mu);
    std::vector<ControlEvent> out;
    for (const auto& e : all) {
      if (e.kind == k && e.vm == vm) out.push_back(e);
    }
    return out;
  }
  [[nodiscard]] std::string dump() const {
    const std::lock_guard<std::mutex> lock(mu);
    std::string out;
    for (const auto& e : all) out += control_event_text(e) + "\n";
    return out;
  }
  mutable std::mutex mu;
  std::vector<ControlEvent> all;
};

// memvirt's controller at 50 ms ticks, shrinking by half its size per tick once calm, so that
// a few ticks reach the bounds.
std::unique_ptr<Policy> fast_controller() {
  ControllerConfig c;
  c.tick = Duration::millis(50);
  c.settle = 2;
  c.probe = 0.5;
  c.ksm = false;
  return std::make_unique<Controller>(c);
}

// The InputError that start() throws; "(no error)" when it starts.
std::string start_error(ControlDaemon& d) {
  try {
    d.start();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = testing::temp_dir();
    fs::remove_all(dir / "proc");
    fs::remove_all(dir / "vms");
    fs::create_directories(dir / "vms");
    proc = std::make_unique<FakeProc>(dir / "proc");
    opt.proc = proc->root;
    opt.qmp_timeout = std::chrono::milliseconds(2000);
  }
  FakeQmp& serve(const std::string& name, FakeGuest g = {}) {
    g.name = name;
    fakes.push_back(std::make_unique<FakeQmp>(dir / "vms" / (name + ".sock"), g));
    return *fakes.back();
  }
  std::string socket(const std::string& name) const {
    return (dir / "vms" / (name + ".sock")).string();
  }
  ControlSummary run(std::uint64_t ticks) {
    opt.ticks = ticks;
    ControlDaemon d(fast_controller(), opt, events);
    d.start();
    return d.run(-1);
  }

  fs::path dir;
  std::unique_ptr<FakeProc> proc;
  std::vector<std::unique_ptr<FakeQmp>> fakes;
  ControlOptions opt;
  Events events;
};

TEST_F(DaemonTest, ADryRunSendsNoBalloonAndNoQomSet) {
  FakeQmp& a = serve("vm-a");
  FakeQmp& b = serve("vm-b");
  opt.sockets = {socket("vm-a"), socket("vm-b")};
  opt.dry_run = true;
  const ControlSummary s = run(12);
  EXPECT_EQ(s.end, ControlSummary::End::kTicks);
  EXPECT_EQ(s.ticks, 12U);
  for (FakeQmp* f : {&a, &b}) {
    EXPECT_EQ(f->count("balloon"), 0U);
    EXPECT_EQ(f->count("qom-set"), 0U);
    EXPECT_EQ(f->guest().polling, 0);
    EXPECT_GE(f->count("query-balloon"), 12U);
  }
  // It decided, and said what it would have done.
  const auto would = events.of(ControlEvent::Kind::kBalloon, "vm-a");
  ASSERT_FALSE(would.empty()) << events.dump();
  for (const auto& e : would) EXPECT_TRUE(e.dry_run);
  EXPECT_GT(s.balloon_changes, 0U);
  // Stats polling is off in these guests, and a dry run says so instead of turning it on.
  const auto notices = events.of(ControlEvent::Kind::kNotice, "vm-a");
  ASSERT_FALSE(notices.empty()) << events.dump();
  EXPECT_NE(notices[0].text.find("stats polling is off"), std::string::npos) << notices[0].text;
  EXPECT_NE(events.dump().find("dry run: nothing was changed"), std::string::npos);
}

TEST_F(DaemonTest, ADryRunTurnsStatsPollingOnOnlyWhenToldAndOffAgain) {
  FakeQmp& a = serve("vm-a");
  opt.sockets = {socket("vm-a")};
  opt.dry_run = true;
  opt.enable_stats_polling = true;
  run(3);
  std::vector<std::int64_t> set;
  for (const auto& c : a.received()) {
    if (c["execute"] == "qom-set") set.push_back(c["arguments"]["value"]);
  }
  EXPECT_EQ(set, (std::vector<std::int64_t>{1, 0}));  // on (whole seconds), then off again
  EXPECT_EQ(a.count("balloon"), 0U);
}

TEST_F(DaemonTest, PollingAlreadyOnIsLeftAlone) {
  FakeGuest g;
  g.polling = 10;
  FakeQmp& a = serve("vm-a", g);
  opt.sockets = {socket("vm-a")};
  run(3);
  EXPECT_EQ(a.count("qom-set"), 0U);
  EXPECT_EQ(a.guest().polling, 10);
}

TEST_F(DaemonTest, ALiveRunSetsTargetsWithinEachGuestsLimits) {
  FakeQmp& a = serve("vm-a");
  FakeQmp& b = serve("vm-b");
  opt.sockets = {socket("vm-a"), socket("vm-b")};
  opt.limits = GuestLimits::parse("", "", {"vm-b=1536MiB:"});
  const ControlSummary s = run(15);
  // The controller wants used + reserve (about 614 MiB for these guests); the bounds hold it
  // at vm-a's default 50% (1 GiB) and vm-b's own 1536 MiB.
  ASSERT_FALSE(a.balloons().empty()) << events.dump();
  ASSERT_FALSE(b.balloons().empty()) << events.dump();
  EXPECT_EQ(a.balloons().back(), kGiB);
  EXPECT_EQ(b.balloons().back(), 1536 * kMiB);
  for (const std::uint64_t v : a.balloons()) {
    EXPECT_GE(v, kGiB);
    EXPECT_EQ(v % 4096, 0U);
  }
  for (const std::uint64_t v : b.balloons()) EXPECT_GE(v, 1536 * kMiB);
  EXPECT_EQ(s.balloon_changes, a.balloons().size() + b.balloons().size());
  // memvirt's controller keeps to the guest's minimum itself (clamping is the host's
  // safety net, tested in QmpHostTest): it asked for 1536 MiB, not for half of 2 GiB.
  const auto last = events.of(ControlEvent::Kind::kBalloon, "vm-b").back();
  EXPECT_EQ(last.requested, Bytes{1536 * kMiB}) << events.dump();
  EXPECT_EQ(last.to, Bytes{1536 * kMiB});
  // Stats polling was turned on for the policy and put back at the end.
  EXPECT_EQ(a.guest().polling, 0);
  EXPECT_GE(a.count("qom-set"), 2U);
}

TEST_F(DaemonTest, AGuestThatGoesAwayIsDroppedAndTheOthersGoOn) {
  FakeQmp& a = serve("vm-a");
  FakeQmp& b = serve("vm-b");
  opt.sockets = {socket("vm-a"), socket("vm-b")};
  a.hang_up_on("query-balloon");
  const ControlSummary s = run(8);
  EXPECT_EQ(s.end, ControlSummary::End::kTicks);
  EXPECT_EQ(s.left, 1U);
  EXPECT_EQ(s.guests, std::vector<std::string>{"vm-b"});
  ASSERT_EQ(events.of(ControlEvent::Kind::kLeave, "vm-a").size(), 1U) << events.dump();
  EXPECT_GE(b.count("query-balloon"), 8U);
  EXPECT_FALSE(b.balloons().empty());
}

TEST_F(DaemonTest, ItEndsWhenNoGuestIsLeft) {
  FakeQmp& a = serve("vm-a");
  opt.sockets = {socket("vm-a")};
  a.hang_up_on("query-balloon");
  const ControlSummary s = run(0);
  EXPECT_EQ(s.end, ControlSummary::End::kNoGuests);
  EXPECT_EQ(s.ticks, 1U);
  EXPECT_NE(events.dump().find("no guest left to control"), std::string::npos);
}

TEST_F(DaemonTest, AFolderIsScannedEveryTickAndAStopEndsTheRun) {
  FakeQmp& a = serve("vm-a");
  std::ofstream(dir / "vms" / "notes.sock") << "not a socket\n";
  opt.dir = (dir / "vms").string();
  opt.connect_timeout = std::chrono::milliseconds(100);
  int stop[2];
  ASSERT_EQ(pipe(stop), 0);
  ControlDaemon d(fast_controller(), opt, events);
  d.start();
  ControlSummary s;
  std::thread t([&] { s = d.run(stop[0]); });
  auto wait_for = [](const std::function<bool()>& f) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!f() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return f();
  };
  EXPECT_TRUE(wait_for([&] { return a.count("query-balloon") >= 2; }));
  FakeQmp& b = serve("vm-b");  // a guest that starts later
  EXPECT_TRUE(wait_for([&] { return b.count("query-balloon") >= 2; }));
  const std::size_t balloons_before = a.balloons().size() + b.balloons().size();
  ASSERT_EQ(write(stop[1], "x", 1), 1);
  t.join();
  close(stop[0]);
  close(stop[1]);
  EXPECT_EQ(s.end, ControlSummary::End::kStopped);
  EXPECT_EQ(s.joined, 2U);
  EXPECT_EQ(s.guests, (std::vector<std::string>{"vm-a", "vm-b"}));
  // The file that is no socket is said once, not at every tick.
  std::size_t notes = 0;
  for (const auto& e : events.of(ControlEvent::Kind::kError, "")) {
    notes += e.text.find("notes.sock") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(notes, 1U) << events.dump();
  // Stopping sends no balloon: targets stay where they were last set.
  EXPECT_LE(a.balloons().size() + b.balloons().size(), balloons_before + 2);
  for (FakeQmp* f : {&a, &b}) {
    for (const std::uint64_t v : f->balloons()) EXPECT_LT(v, 2 * kGiB);
  }
}

TEST_F(DaemonTest, ANamedSocketThatCannotBeControlledIsAnInputError) {
  opt.sockets = {socket("nowhere")};
  ControlDaemon d(fast_controller(), opt, events);
  EXPECT_EQ(start_error(d),
            socket("nowhere") + ": no such file (expected a running QEMU's QMP socket)");
  FakeQmp& a = serve("vm-a");
  a.script_error("qom-get", "DeviceNotFound", "Device 'balloon0' not found");
  ControlOptions o2 = opt;
  o2.sockets = {socket("vm-a")};
  ControlDaemon d2(fast_controller(), o2, events);
  const std::string e = start_error(d2);
  EXPECT_NE(e.find(socket("vm-a") + ": vm-a: no balloon device at /machine/peripheral/balloon0"),
            std::string::npos)
      << e;
}

TEST_F(DaemonTest, MemvirtsControllerRefusesABalloonThatDoesNotDeflateOnOom) {
  FakeGuest g;
  g.deflate_on_oom = false;
  serve("vm-a", g);
  opt.sockets = {socket("vm-a")};
  ControlDaemon d(fast_controller(), opt, events);
  EXPECT_EQ(start_error(d),
            socket("vm-a") +
                ": vm-a: the memvirt policy needs a balloon the guest deflates on "
                "OOM (QEMU -device virtio-balloon-pci,id=balloon0,deflate-on-oom=on)");
  // MOM does not need it (here without its KSM rules, as memvirt control builds it).
  MomConfig m;
  m.ksm_rules = false;
  ControlDaemon mom(std::make_unique<Mom>(m), opt, events);
  EXPECT_NO_THROW(mom.start());
}

TEST_F(DaemonTest, BoundsThatContradictEachOtherRefuseTheGuest) {
  serve("vm-a");
  opt.sockets = {socket("vm-a")};
  opt.limits = GuestLimits::parse("3GiB", "", {});
  ControlDaemon d(fast_controller(), opt, events);
  const std::string e = start_error(d);
  EXPECT_NE(e.find("vm-a: --min/--max/--limit: minimum 3.00 GiB"), std::string::npos) << e;
}

TEST_F(DaemonTest, ANameTakenTwiceIsRefused) {
  serve("vm-a");
  FakeGuest g;
  g.name = "vm-a";
  fakes.push_back(std::make_unique<FakeQmp>(dir / "vms" / "other.sock", g));
  opt.sockets = {socket("vm-a"), (dir / "vms" / "other.sock").string()};
  ControlDaemon d(fast_controller(), opt, events);
  const std::string e = start_error(d);
  EXPECT_NE(e.find("the guest on " + socket("vm-a") + " has that name"), std::string::npos) << e;
}

}  // namespace
}  // namespace memvirt
