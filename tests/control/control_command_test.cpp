// The `memvirt control` command itself ($MEMVIRT_BIN, which ctest sets), against a scripted
// QEMU monitor in this process: SIGTERM ends it with status 0 and a summary, every balloon
// left where it was last set, stats polling and KSM put back; bad flags are one line and
// status 2.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "command_util.hpp"
#include "fake_qmp.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;
using testing::FakeGuest;
using testing::FakeProc;
using testing::FakeQmp;
using testing::first_line;
using testing::kGiB;
using testing::kMiB;
using testing::wait_exit;
using testing::wait_for;
using testing::whole_file;

class ControlCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* b = std::getenv("MEMVIRT_BIN");
    if (b == nullptr) {
      GTEST_SKIP() << "MEMVIRT_BIN is not set, so the memvirt command cannot be run: run this "
                      "test through ctest, which sets it";
    }
    bin = b;
    base = testing::temp_dir();
    for (const char* d : {"vms", "proc", "state", "ksm"}) fs::remove_all(base / d);
    fs::create_directories(base / "vms");
    proc = std::make_unique<FakeProc>(base / "proc");
  }

  // Starts memvirt with `args`, MEMVIRT_STATE_DIR in this test's folder, its output in
  // <name>.out and <name>.err.
  pid_t spawn(std::vector<std::string> args, const std::string& name) const {
    return testing::spawn_memvirt(bin, std::move(args), base / "state", base / (name + ".out"),
                                  base / (name + ".err"));
  }
  int run(const std::vector<std::string>& args, const std::string& name) const {
    return wait_exit(spawn(args, name));
  }
  [[nodiscard]] std::string out(const std::string& name) const {
    return testing::whole_file(base / (name + ".out"));
  }
  [[nodiscard]] std::string err(const std::string& name) const {
    return testing::whole_file(base / (name + ".err"));
  }
  [[nodiscard]] std::string socket(const std::string& vm) const {
    return (base / "vms" / (vm + ".sock")).string();
  }

  std::string bin;
  fs::path base;
  std::unique_ptr<FakeProc> proc;
};

TEST_F(ControlCommand, SigtermStopsCleanlyAndLeavesTheBalloonsWhereTheyWere) {
  FakeGuest guest{"vm1"};
  guest.stats_follow_balloon = true;
  FakeQmp vm(socket("vm1"), guest);
  const fs::path log = base / "control.jsonl";
  fs::remove(log);
  const pid_t pid = spawn({"control", socket("vm1"), "--interval", "100ms", "--min", "25%", "--log",
                           log.string(), "--proc", proc->root.string()},
                          "term");
  // After 5 calm ticks memvirt's controller gives the free memory back, then probes the
  // page cache 1% of the guest's size per tick.
  const bool shrank = wait_for([&] { return vm.balloons().size() >= 3; }, std::chrono::seconds(30));
  EXPECT_TRUE(shrank) << err("term");
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(wait_exit(pid), 0) << err("term");
  const std::string o = out("term");
  EXPECT_EQ(o.rfind("memvirt control (SIGTERM): stopped after ", 0), 0U) << o;
  EXPECT_NE(o.find("balloons left where last set"), std::string::npos) << o;
  EXPECT_EQ(std::count(o.begin(), o.end(), '\n'), 1) << o;

  // No balloon went back up at the stop: the targets only went down, and the last one set
  // is the last the log records.
  const std::vector<std::uint64_t> balloons = vm.balloons();
  ASSERT_FALSE(balloons.empty());
  for (std::size_t i = 1; i < balloons.size(); ++i) EXPECT_LT(balloons[i], balloons[i - 1]);
  EXPECT_LT(balloons.back(), 2 * kGiB);
  EXPECT_EQ(vm.guest().actual, balloons.back());
  std::istringstream lines(whole_file(log));
  std::string line;
  std::vector<nlohmann::json> records;
  while (std::getline(lines, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    records.push_back(j);
  }
  ASSERT_GE(records.size(), 4U);
  EXPECT_EQ(records.front()["event"], "start");
  EXPECT_EQ(records.back()["event"], "stop");
  std::uint64_t last_to = 0;
  std::size_t logged = 0;
  for (const auto& r : records) {
    EXPECT_TRUE(r.contains("time") && r.contains("t")) << r.dump();
    if (r["event"] == "balloon") {
      ++logged;
      last_to = r["to"];
      EXPECT_EQ(r["vm"], "vm1");
      EXPECT_FALSE(r["dry_run"].get<bool>());
      EXPECT_FALSE(r["reason"].get<std::string>().empty());
      EXPECT_GT(r["from"].get<std::uint64_t>(), r["to"].get<std::uint64_t>());
    }
  }
  EXPECT_EQ(logged, balloons.size());
  EXPECT_EQ(last_to, balloons.back());
  // Stats polling, which it turned on, is off again; nothing else was set after the signal.
  EXPECT_EQ(vm.guest().polling, 0);
  const std::vector<nlohmann::json> received = vm.received();
  ASSERT_FALSE(received.empty());
  EXPECT_EQ(received.back()["execute"], "qom-set");
  EXPECT_EQ(received.back()["arguments"]["value"], 0);
}

TEST_F(ControlCommand, KsmSettingsComeBackAtTheEnd) {
  const fs::path ksm = base / "ksm";
  fs::create_directories(ksm);
  for (const auto& [knob, v] :
       std::vector<std::pair<std::string, std::string>>{{"run", "0"},
                                                        {"pages_to_scan", "100"},
                                                        {"sleep_millisecs", "20"},
                                                        {"pages_shared", "0"},
                                                        {"pages_sharing", "0"},
                                                        {"full_scans", "0"}}) {
    std::ofstream(ksm / knob) << v << "\n";
  }
  // A host short of memory (1 of 16 GiB free): memvirt's controller starts KSM.
  proc->meminfo(16 * kGiB, 1 * kGiB, 256 * kMiB, 512 * kMiB);
  FakeQmp vm(socket("vm1"), FakeGuest{"vm1"});
  const pid_t pid = spawn({"control", socket("vm1"), "--interval", "100ms", "--ksm", "--ksm-sysfs",
                           ksm.string(), "--proc", proc->root.string()},
                          "ksm");
  const bool started =
      wait_for([&] { return first_line(ksm / "run") == "1"; }, std::chrono::seconds(30));
  EXPECT_TRUE(started) << err("ksm");
  EXPECT_EQ(first_line(ksm / "pages_to_scan"), "300");
  EXPECT_TRUE(fs::exists(base / "state"));  // the host's values, on disk while changed
  ASSERT_EQ(kill(pid, SIGINT), 0);
  EXPECT_EQ(wait_exit(pid), 0) << err("ksm");
  EXPECT_EQ(out("ksm").rfind("memvirt control (SIGINT): stopped after ", 0), 0U) << out("ksm");
  EXPECT_EQ(first_line(ksm / "run"), "0");
  EXPECT_EQ(first_line(ksm / "pages_to_scan"), "100");
  EXPECT_EQ(first_line(ksm / "sleep_millisecs"), "20");
  EXPECT_TRUE(!fs::exists(base / "state") || fs::is_empty(base / "state"));
  EXPECT_NE(err("ksm").find("host KSM settings put back as they were"), std::string::npos)
      << err("ksm");
}

TEST_F(ControlCommand, ADryRunOfTheCommandChangesNothing) {
  FakeQmp vm(socket("vm1"), FakeGuest{"vm1"});
  EXPECT_EQ(run({"control", "--dry-run", socket("vm1"), "--interval", "50ms", "--ticks", "12",
                 "--proc", proc->root.string()},
                "dry"),
            0)
      << err("dry");
  EXPECT_EQ(vm.count("balloon"), 0U);
  EXPECT_EQ(vm.count("qom-set"), 0U);
  EXPECT_NE(err("dry").find("stats polling is off"), std::string::npos) << err("dry");
  EXPECT_NE(err("dry").find("[dry run: not done]"), std::string::npos) << err("dry");
  EXPECT_EQ(out("dry").rfind("memvirt control: done after 12 ticks", 0), 0U) << out("dry");
}

TEST_F(ControlCommand, BadFlagsAreOneLineAndStatusTwo) {
  FakeQmp vm(socket("vm1"), FakeGuest{"vm1"});
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"control"},
       "memvirt: SOCKET: name the guests' QMP sockets, or a folder of them with --dir"},
      {{"control", socket("nowhere")},
       "memvirt: " + socket("nowhere") + ": no such file (expected a running QEMU's QMP socket)"},
      {{"control", socket("vm1"), "--min", "lots"},
       "memvirt: --min: 'lots': expected a size (512MiB) or a share of the guest's memory (50%)"},
      {{"control", socket("vm1"), "--limit", "vm1"},
       "memvirt: --limit: 'vm1': expected NAME=MIN:MAX (either bound may be empty)"},
      {{"control", socket("vm1"), "--interval", "soon"}, "memvirt: --interval: soon: "},
      {{"control", socket("vm1"), "--policy", "mom", "--interval", "1min"},
       "memvirt: --interval: '1min': the mom policy refuses it: policy_interval: must be at least "
       "monitor_interval"},
      {{"control", "--dir", (base / "nowhere").string()},
       "memvirt: --dir: " + (base / "nowhere").string() + ": not a folder"},
      {{"control", socket("vm1"), "--log", (base / "no" / "such" / "log").string()},
       "memvirt: --log: " + (base / "no" / "such" / "log").string() + ": cannot be written"},
      {{"control", socket("vm1"), "--ksm", "--ksm-sysfs", (base / "no-ksm").string()},
       "memvirt: --ksm: " + (base / "no-ksm" / "run").string() +
           " does not exist (a kernel without KSM?)"},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string name = "bad" + std::to_string(i++);
    EXPECT_EQ(run(c.args, name), 2) << c.error << "\n" << err(name);
    const std::string e = err(name);
    EXPECT_EQ(e.rfind(c.error, 0), 0U) << e;
    // One line: the error, nothing before it (a start record is printed only once running).
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  }
  // --policy is checked by the command line parser (CLI11), also with status 2.
  EXPECT_EQ(run({"control", socket("vm1"), "--policy", "dmc"}, "policy"), 2);
  EXPECT_EQ(vm.count("balloon"), 0U);
}

}  // namespace
}  // namespace memvirt
