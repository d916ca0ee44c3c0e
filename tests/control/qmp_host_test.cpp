// The host adapter against scripted QEMU monitors (fake_qmp.hpp) and a fake /proc: the
// observation a policy gets is built from the replies; actions become `balloon` commands
// with the clamped value; a dry run sends none; replies that make no sense skip that guest
// with an error naming it and the field; a guest whose QEMU exits is dropped.
#include "control/qmp_host.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include "fake_qmp.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;
using testing::FakeGuest;
using testing::FakeProc;
using testing::FakeQmp;
using testing::kGiB;
using testing::kMiB;

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

class QmpHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = testing::temp_dir();
    fs::remove_all(dir / "proc");
    proc = std::make_unique<FakeProc>(dir / "proc");
  }

  FakeQmp& serve(const std::string& name, FakeGuest g = {}) {
    g.name = name;
    fakes.push_back(std::make_unique<FakeQmp>(dir / (name + ".sock"), g));
    return *fakes.back();
  }
  // Connects to `f` as `memvirt control` does and adds the guest.
  std::uint32_t add(QmpHost& host, FakeQmp& f, GuestBounds b = {}) {
    QmpClient c = QmpClient::connect_unix(f.path(), "x", std::chrono::milliseconds(2000));
    const std::string name = QmpGuest::name_of(c, f.path());
    return host.add(QmpGuest(name, f.path(), std::move(c), b));
  }
  QmpHost make_host(KsmControl* ksm = nullptr) const {
    return QmpHost(HostSources{proc->root, ksm});
  }

  static const ControlEvent* find(const std::vector<ControlEvent>& events, ControlEvent::Kind k,
                                  const std::string& vm) {
    for (const auto& e : events) {
      if (e.kind == k && e.vm == vm) return &e;
    }
    return nullptr;
  }

  fs::path dir;
  std::unique_ptr<FakeProc> proc;
  std::vector<std::unique_ptr<FakeQmp>> fakes;
};

TEST_F(QmpHostTest, TheObservationIsWhatTheRepliesSay) {
  FakeGuest a;
  a.actual = 1536 * kMiB;
  a.swap_in = 8192;
  a.swap_out = 4096;
  a.major_faults = 77;
  a.minor_faults = 9999;
  a.free = 300 * kMiB;
  a.total = 1400 * kMiB;
  a.available = 900 * kMiB;
  a.caches = 500 * kMiB;
  a.last_update_offset = -3;
  FakeQmp& fa = serve("vm-a", a);
  FakeGuest b;
  b.memory = b.actual = 4 * kGiB;
  b.reported = false;  // no report yet
  FakeQmp& fb = serve("vm-b", b);
  QmpHost host = make_host();
  const std::uint32_t ka = add(host, fa);
  GuestBounds bounds;
  bounds.min = MemoryBound::size(Bytes{512 * kMiB});
  bounds.max = MemoryBound::share(0.75);
  const std::uint32_t kb = add(host, fb, bounds);

  const QmpHost::Observed o = host.observe(Duration::seconds(5), unix_now());
  EXPECT_TRUE(o.events.empty()) << control_event_text(o.events[0]);
  EXPECT_EQ(o.skipped, 0U);
  ASSERT_TRUE(o.host.has_value());
  const HostObservation& h = *o.host;
  EXPECT_EQ(h.since_start, Duration::seconds(5));
  EXPECT_EQ(h.total, Bytes{16 * kGiB});
  EXPECT_EQ(h.free, Bytes{8 * kGiB});
  EXPECT_EQ(h.cached, Bytes{4 * kGiB});  // Buffers + Cached
  EXPECT_EQ(h.memory_stall, Duration{1'500'000});
  EXPECT_FALSE(h.ksm.has_value());
  ASSERT_EQ(h.guests.size(), 2U);

  const GuestObservation& ga = h.guests[0];
  EXPECT_EQ(ga.key, ka);
  EXPECT_EQ(ga.name, "vm-a");
  EXPECT_EQ(ga.memory, Bytes{2 * kGiB});
  EXPECT_EQ(ga.actual, Bytes{1536 * kMiB});
  EXPECT_EQ(ga.target, Bytes{1536 * kMiB});  // never set: taken as the actual size
  EXPECT_EQ(ga.min, Bytes{kGiB});            // 50% by default
  EXPECT_EQ(ga.max, Bytes{2 * kGiB});
  EXPECT_EQ(ga.resident, Bytes{512 * kMiB});  // the fake /proc's VmRSS of QEMU's pid
  ASSERT_TRUE(ga.stats.has_value());
  EXPECT_GE(ga.stats->age, Duration::seconds(3));
  EXPECT_LE(ga.stats->age, Duration::seconds(5));
  EXPECT_EQ(ga.stats->total, Bytes{1400 * kMiB});
  EXPECT_EQ(ga.stats->free, Bytes{300 * kMiB});
  EXPECT_EQ(ga.stats->available, Bytes{900 * kMiB});
  EXPECT_EQ(ga.stats->caches, Bytes{500 * kMiB});
  EXPECT_EQ(ga.stats->swap_in_bytes, 8192U);
  EXPECT_EQ(ga.stats->swap_out_bytes, 4096U);
  EXPECT_EQ(ga.stats->major_faults, 77U);
  EXPECT_EQ(ga.stats->minor_faults, 9999U);
  EXPECT_FALSE(ga.committed.has_value());
  EXPECT_FALSE(ga.memory_stall.has_value());

  const GuestObservation& gb = h.guests[1];
  EXPECT_EQ(gb.key, kb);
  EXPECT_EQ(gb.memory, Bytes{4 * kGiB});
  EXPECT_EQ(gb.min, Bytes{512 * kMiB});
  EXPECT_EQ(gb.max, Bytes{3 * kGiB});
  EXPECT_FALSE(gb.stats.has_value());
  // What was asked of each QEMU.
  std::vector<std::string> asked;
  for (const auto& c : fa.received()) asked.push_back(c["execute"]);
  EXPECT_EQ(asked,
            (std::vector<std::string>{"qmp_capabilities", "query-name", "query-memory-size-summary",
                                      "query-balloon", "qom-get"}));
}

TEST_F(QmpHostTest, ActionsBecomeBalloonCommandsWithTheClampedValue) {
  FakeQmp& fa = serve("vm-a");
  FakeQmp& fb = serve("vm-b");
  QmpHost host = make_host();
  const std::uint32_t ka = add(host, fa);
  const std::uint32_t kb = add(host, fb);
  const HostObservation now = *host.observe(Duration::seconds(1), unix_now()).host;
  PolicyActions a;
  a.balloons.push_back({ka, Bytes{100 * kMiB}, "shrink a lot"});       // below min: 1 GiB
  a.balloons.push_back({kb, Bytes{1900 * kMiB + 5}, "shrink a bit"});  // not whole pages
  a.balloons.push_back({99, Bytes{kGiB}, "a guest that is not there"});
  const std::vector<ControlEvent> ev = host.carry_out(now, a, false);
  EXPECT_EQ(fa.balloons(), std::vector<std::uint64_t>{kGiB});
  EXPECT_EQ(fb.balloons(), std::vector<std::uint64_t>{1900 * kMiB});
  ASSERT_EQ(ev.size(), 2U);
  EXPECT_EQ(ev[0].kind, ControlEvent::Kind::kBalloon);
  EXPECT_EQ(ev[0].vm, "vm-a");
  EXPECT_EQ(ev[0].from, Bytes{2 * kGiB});
  EXPECT_EQ(ev[0].requested, Bytes{100 * kMiB});
  EXPECT_EQ(ev[0].to, Bytes{kGiB});
  EXPECT_EQ(ev[0].text, "shrink a lot");
  EXPECT_FALSE(ev[0].dry_run);
  EXPECT_TRUE(ev[0].failed.empty());
  EXPECT_EQ(control_event_text(ev[0]),
            "vm-a: balloon 2048 MiB -> 1024 MiB (asked 100 MiB, clamped): shrink a lot");
  EXPECT_EQ(ev[1].to, Bytes{1900 * kMiB});

  // The next observation has the targets set; asking for them again sends nothing.
  const HostObservation later = *host.observe(Duration::seconds(2), unix_now()).host;
  EXPECT_EQ(later.guests[0].target, Bytes{kGiB});
  EXPECT_EQ(later.guests[0].actual, Bytes{kGiB});  // the fake guest follows at once
  PolicyActions again;
  again.balloons.push_back({ka, Bytes{kGiB}, "same"});
  EXPECT_TRUE(host.carry_out(later, again, false).empty());
  EXPECT_EQ(fa.count("balloon"), 1U);
}

TEST_F(QmpHostTest, ADryRunSendsNothingButRemembersTheTargets) {
  FakeQmp& fa = serve("vm-a");
  QmpHost host = make_host();
  const std::uint32_t ka = add(host, fa);
  const HostObservation now = *host.observe(Duration::seconds(1), unix_now()).host;
  PolicyActions a;
  a.balloons.push_back({ka, Bytes{1536 * kMiB}, "calm"});
  const std::vector<ControlEvent> ev = host.carry_out(now, a, true);
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_TRUE(ev[0].dry_run);
  EXPECT_EQ(ev[0].to, Bytes{1536 * kMiB});
  EXPECT_NE(control_event_text(ev[0]).find("[dry run: not done]"), std::string::npos);
  const HostObservation later = *host.observe(Duration::seconds(2), unix_now()).host;
  EXPECT_EQ(later.guests[0].target, Bytes{1536 * kMiB});
  EXPECT_EQ(later.guests[0].actual, Bytes{2 * kGiB});
  EXPECT_EQ(fa.count("balloon"), 0U);
  EXPECT_EQ(fa.count("qom-set"), 0U);
}

// Each reply below makes no sense or fails: the guest is left out of that tick, with one
// error naming it, the command and the field; the other guest is observed as usual, and the
// guest comes back once its replies make sense again.
TEST_F(QmpHostTest, NonsenseRepliesSkipTheGuestNamingItAndTheField) {
  FakeQmp& bad = serve("vm-bad");
  FakeQmp& good = serve("vm-good");
  QmpHost host = make_host();
  add(host, bad);
  add(host, good);
  struct Case {
    std::function<void()> script;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[&] {
         bad.script_return("query-balloon", {{"actual", "lots"}});
       },
       "vm-bad: query-balloon: actual: not an integer: \"lots\""},
      {[&] { bad.script_return("query-balloon", nlohmann::json::object()); },
       "vm-bad: query-balloon: actual: missing"},
      {[&] {
         bad.script_return("query-balloon", {{"actual", -1048576}});
       },
       "vm-bad: query-balloon: actual: is negative (-1048576)"},
      {[&] {
         bad.script_return("query-balloon", {{"actual", 3 * kGiB}});
       },
       "vm-bad: query-balloon: actual: 3.00 GiB is more than the guest's memory, 2.00 GiB"},
      {[&] { bad.script("query-balloon", "{\"return\": {\"actual\": "); },
       "vm-bad: QMP: malformed JSON while waiting for the reply to query-balloon"},
      {[&] { bad.script("query-balloon", "[1, 2]"); }, "vm-bad: QMP: expected a JSON object"},
      {[&] {
         bad.script_error("query-balloon", "DeviceNotActive",
                          "No balloon device has been activated");
       },
       "vm-bad: QMP: query-balloon failed: DeviceNotActive: No balloon device has been activated"},
      {[&] {
         bad.script_return("query-memory-size-summary", {{"base-memory", "2G"}});
       },
       "vm-bad: query-memory-size-summary: base-memory: not an integer"},
      {[&] {
         bad.script_return("qom-get", {{"stats", nlohmann::json::object()}, {"last-update", 1}});
       },
       "vm-bad: qom-get guest-stats: stats.stat-swap-in: missing"},
      {[&] { bad.change([](FakeGuest& g) { g.last_update_offset = 3600; }); },
       "vm-bad: qom-get guest-stats: last-update:"},
      {[&] { bad.change([](FakeGuest& g) { g.free = -5; }); },
       "vm-bad: qom-get guest-stats: stats.stat-free-memory: is negative (-5)"},
  };
  Duration t = Duration::seconds(1);
  for (const Case& c : cases) {
    c.script();
    const QmpHost::Observed o = host.observe(t, unix_now());
    t += Duration::seconds(1);
    ASSERT_TRUE(o.host.has_value());
    ASSERT_EQ(o.host->guests.size(), 1U) << c.expect;
    EXPECT_EQ(o.host->guests[0].name, "vm-good");
    EXPECT_EQ(o.skipped, 1U);
    const ControlEvent* skip = find(o.events, ControlEvent::Kind::kSkip, "vm-bad");
    ASSERT_NE(skip, nullptr) << c.expect;
    EXPECT_EQ(skip->text.rfind(c.expect, 0), 0U) << skip->text;
    bad.change([](FakeGuest& g) {
      g.last_update_offset = 0;
      g.free = kGiB;
    });
    // Back to sense: observed again, and said so.
    const QmpHost::Observed back = host.observe(t, unix_now());
    t += Duration::seconds(1);
    EXPECT_EQ(back.host->guests.size(), 2U) << c.expect;
    EXPECT_NE(find(back.events, ControlEvent::Kind::kRecover, "vm-bad"), nullptr) << c.expect;
  }
  EXPECT_EQ(host.size(), 2U);
}

TEST_F(QmpHostTest, TheSameErrorAgainIsNotLoggedAgainButStillSkips) {
  FakeQmp& bad = serve("vm-bad");
  QmpHost host = make_host();
  add(host, bad);
  for (int i = 0; i < 3; ++i) bad.script_return("query-balloon", {{"actual", -1}});
  std::size_t skips = 0;
  for (int i = 0; i < 3; ++i) {
    const QmpHost::Observed o = host.observe(Duration::seconds(i + 1), unix_now());
    EXPECT_TRUE(o.host->guests.empty());
    EXPECT_EQ(o.skipped, 1U);
    skips += o.events.size();
  }
  EXPECT_EQ(skips, 1U);
  const QmpHost::Observed back = host.observe(Duration::seconds(4), unix_now());
  ASSERT_EQ(back.events.size(), 1U);
  EXPECT_EQ(back.events[0].text, "replies make sense again after 3 skipped ticks");
}

TEST_F(QmpHostTest, AGuestWhoseQemuExitsIsDroppedAndTheOthersGoOn) {
  FakeQmp& fa = serve("vm-a");
  FakeQmp& fb = serve("vm-b");
  QmpHost host = make_host();
  add(host, fa);
  const std::uint32_t kb = add(host, fb);
  fa.hang_up_on("query-balloon");
  const QmpHost::Observed o = host.observe(Duration::seconds(1), unix_now());
  const ControlEvent* leave = find(o.events, ControlEvent::Kind::kLeave, "vm-a");
  ASSERT_NE(leave, nullptr);
  EXPECT_NE(leave->text.find("socket closed by QEMU"), std::string::npos) << leave->text;
  ASSERT_EQ(o.host->guests.size(), 1U);
  EXPECT_EQ(o.host->guests[0].key, kb);
  EXPECT_EQ(host.size(), 1U);
  EXPECT_TRUE(fa.gone());
  const QmpHost::Observed later = host.observe(Duration::seconds(2), unix_now());
  EXPECT_TRUE(later.events.empty());
  EXPECT_EQ(later.host->guests.size(), 1U);
}

TEST_F(QmpHostTest, AGuestThatExitsWhileBeingBalloonedIsDropped) {
  FakeQmp& fa = serve("vm-a");
  QmpHost host = make_host();
  const std::uint32_t ka = add(host, fa);
  const HostObservation now = *host.observe(Duration::seconds(1), unix_now()).host;
  fa.hang_up_on("balloon");
  PolicyActions a;
  a.balloons.push_back({ka, Bytes{1536 * kMiB}, "calm"});
  const std::vector<ControlEvent> ev = host.carry_out(now, a, false);
  ASSERT_EQ(ev.size(), 2U);
  EXPECT_EQ(ev[0].kind, ControlEvent::Kind::kBalloon);
  EXPECT_FALSE(ev[0].failed.empty());
  EXPECT_EQ(ev[1].kind, ControlEvent::Kind::kLeave);
  EXPECT_EQ(host.size(), 0U);
}

TEST_F(QmpHostTest, AnErrorReplyToBalloonIsAFailedAction) {
  FakeQmp& fa = serve("vm-a");
  QmpHost host = make_host();
  const std::uint32_t ka = add(host, fa);
  const HostObservation now = *host.observe(Duration::seconds(1), unix_now()).host;
  fa.script_error("balloon", "DeviceNotActive", "No balloon device has been activated");
  PolicyActions a;
  a.balloons.push_back({ka, Bytes{1536 * kMiB}, "calm"});
  const std::vector<ControlEvent> ev = host.carry_out(now, a, false);
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_NE(ev[0].failed.find("balloon failed: DeviceNotActive"), std::string::npos);
  EXPECT_EQ(host.size(), 1U);
  // The target is not taken as set.
  EXPECT_EQ(host.observe(Duration::seconds(2), unix_now()).host->guests[0].target, Bytes{2 * kGiB});
}

TEST_F(QmpHostTest, UnreportedStatisticsAreSaidOnce) {
  FakeGuest g;
  g.available = -1;
  g.swap_in = -1;
  FakeQmp& fa = serve("vm-a", g);
  QmpHost host = make_host();
  add(host, fa);
  const QmpHost::Observed o = host.observe(Duration::seconds(1), unix_now());
  ASSERT_EQ(o.events.size(), 1U);
  EXPECT_EQ(o.events[0].kind, ControlEvent::Kind::kNotice);
  EXPECT_EQ(o.events[0].text,
            "the guest does not report stat-swap-in, stat-available-memory: its stats are not "
            "used");
  EXPECT_FALSE(o.host->guests[0].stats.has_value());
  EXPECT_TRUE(host.observe(Duration::seconds(2), unix_now()).events.empty());
}

TEST_F(QmpHostTest, AnUnreadableHostIsNoObservation) {
  FakeQmp& fa = serve("vm-a");
  QmpHost host = make_host();
  add(host, fa);
  std::ofstream(proc->root / "meminfo") << "MemTotal: 100 kB\n";
  const QmpHost::Observed o = host.observe(Duration::seconds(1), unix_now());
  EXPECT_FALSE(o.host.has_value());
  ASSERT_FALSE(o.events.empty());
  EXPECT_EQ(o.events[0].kind, ControlEvent::Kind::kError);
  EXPECT_NE(o.events[0].text.find("meminfo: no MemFree line"), std::string::npos);
}

TEST_F(QmpHostTest, KsmIsObservedAndTunedThroughItsGuard) {
  const fs::path ksm_dir = dir / "ksm";
  fs::remove_all(ksm_dir);
  fs::remove_all(dir / "state");
  fs::create_directories(ksm_dir);
  for (const auto& [knob, v] :
       std::vector<std::pair<std::string, std::string>>{{"run", "0"},
                                                        {"pages_to_scan", "100"},
                                                        {"sleep_millisecs", "20"},
                                                        {"pages_shared", "7"},
                                                        {"pages_sharing", "70"},
                                                        {"full_scans", "3"}}) {
    std::ofstream(ksm_dir / knob) << v << "\n";
  }
  auto first = [&](const char* knob) {
    std::ifstream in(ksm_dir / knob);
    std::string s;
    std::getline(in, s);
    return s;
  };
  {
    KsmControl ksm(KsmSysfs(ksm_dir), KsmStateStore(dir / "state"));
    QmpHost host = make_host(&ksm);
    const HostObservation now = *host.observe(Duration::seconds(1), unix_now()).host;
    ASSERT_TRUE(now.ksm.has_value());
    EXPECT_FALSE(now.ksm->run);
    EXPECT_EQ(now.ksm->pages_to_scan, 100U);
    EXPECT_EQ(now.ksm->sleep, Duration::millis(20));
    EXPECT_EQ(now.ksm->pages_shared, 7U);
    EXPECT_EQ(now.ksm->pages_sharing, 70U);
    EXPECT_EQ(now.ksm->full_scans, 3U);
    PolicyActions a;
    a.ksm = KsmTuning{true, 300, Duration::millis(20)};
    a.ksm_reason = "short";
    const std::vector<ControlEvent> ev = host.carry_out(now, a, false);
    ASSERT_EQ(ev.size(), 1U);
    EXPECT_EQ(control_event_text(ev[0]), "host: KSM stopped -> run, 300 pages per 20 ms: short");
    EXPECT_EQ(first("run"), "1");
    EXPECT_EQ(first("pages_to_scan"), "300");
    EXPECT_EQ(first("sleep_millisecs"), "20");
    EXPECT_TRUE(fs::exists(dir / "state"));
  }
  EXPECT_EQ(first("run"), "0");
  EXPECT_EQ(first("pages_to_scan"), "100");
}

TEST_F(QmpHostTest, AHostThatCannotTuneKsmRefusesPoliciesThatNeedIt) {
  QmpHost host = make_host();
  PolicyInputs in;
  in.balloon = in.balloon_stats = true;
  EXPECT_EQ(host.missing(in), "");
  in.ksm = true;
  in.committed = true;
  EXPECT_EQ(host.missing(in),
            "needs the guests' Committed_AS (a guest agent's), host KSM, which this host does "
            "not provide");
}

}  // namespace
}  // namespace memvirt
