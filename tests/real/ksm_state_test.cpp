// The host's KSM settings kept in a state file while a run has them changed
// (real/ksm_state.hpp), against a fake sysfs folder: the file is on disk before the first
// write, gone once the values are back, and a run killed with SIGKILL has its settings put
// back by the next run or by `memvirt restore`.
#include "real/ksm_state.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "command_util.hpp"
#include "real/ksm_sysfs.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::first_line;
using testing::whole_file;

// The pid of a process that has exited (and been reaped).
long dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

class KsmState : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path base = testing::temp_dir();
    dir = base / "ksm";
    state = base / "state";
    fs::remove_all(dir);
    fs::remove_all(state);
    fs::create_directories(dir);
    put("run", "0");
    put("pages_to_scan", "100");
    put("sleep_millisecs", "20");
    put("advisor_mode", "[none] scan-time");
  }
  void put(const std::string& knob, const std::string& v) const {
    std::ofstream(dir / knob) << v << "\n";
  }
  [[nodiscard]] KsmStateStore store() const { return KsmStateStore(state); }
  [[nodiscard]] fs::path state_file() const { return store().file_for(dir); }
  // What a run that died with pages_to_scan=5000 and run=1 applied leaves behind.
  void leave_a_dead_run(long pid, std::uint64_t start = 0) const {
    KsmSavedState s;
    s.root = dir;
    s.pid = pid;
    s.pid_start = start;
    s.process = "memvirt";
    s.written = "2026-01-01T00:00:00Z";
    s.knobs = {{"pages_to_scan", "100", "5000"}, {"run", "0", "1"}};
    store().save(s);
    put("pages_to_scan", "5000");
    put("run", "1");
  }
  fs::path dir;
  fs::path state;
};

TEST_F(KsmState, TheOriginalValuesAreOnDiskWhileChanged) {
  const KsmSysfs ksm(dir);
  KsmSettingsGuard g(ksm, {{"run", "1"}, {"pages_to_scan", "5000"}, {"smart_scan", "0"}}, store());
  ASSERT_TRUE(fs::exists(state_file()));
  const json j = json::parse(whole_file(state_file()));
  EXPECT_EQ(j["format"], "memvirt-ksm-state/1");
  EXPECT_EQ(j["sysfs_root"], dir.string());
  EXPECT_EQ(j["pid"], static_cast<long>(getpid()));
  EXPECT_GT(j["pid_start_ticks"].get<std::uint64_t>(), 0U);
  EXPECT_FALSE(j["written"].get<std::string>().empty());
  // The knobs changed, in the order applied (`run` last; smart_scan is absent here).
  ASSERT_EQ(j["settings"].size(), 2U);
  EXPECT_EQ(j["settings"][0]["knob"], "pages_to_scan");
  EXPECT_EQ(j["settings"][0]["original"], "100");
  EXPECT_EQ(j["settings"][0]["set"], "5000");
  EXPECT_EQ(j["settings"][1]["knob"], "run");
  EXPECT_EQ(j["settings"][1]["original"], "0");
  // Nothing but the final file in the folder (the temporary one was renamed).
  EXPECT_EQ(std::distance(fs::directory_iterator(state), fs::directory_iterator()), 1);
  EXPECT_FALSE(g.recovered().has_value());
}

// The state file is written before sysfs: when it cannot be written, nothing changes.
TEST_F(KsmState, NoStateFileMeansNoChange) {
  std::ofstream(state) << "a file where the folder should be\n";
  const KsmSysfs ksm(dir);
  try {
    const KsmSettingsGuard g(ksm, {{"pages_to_scan", "5000"}, {"run", "1"}}, store());
    FAIL() << "expected an error";
  } catch (const KsmStateError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write KSM state file"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
  EXPECT_EQ(first_line(dir / "run"), "0");
}

TEST_F(KsmState, TheFileIsRemovedOnceTheValuesAreBack) {
  const KsmSysfs ksm(dir);
  {
    const KsmSettingsGuard g(ksm, {{"pages_to_scan", "5000"}, {"run", "1"}}, store());
    EXPECT_TRUE(fs::exists(state_file()));
  }
  EXPECT_FALSE(fs::exists(state_file()));
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
  {
    KsmSettingsGuard g(ksm, {{"sleep_millisecs", "0"}, {"run", "1"}}, store());
    EXPECT_TRUE(g.restore().empty());
    EXPECT_FALSE(fs::exists(state_file()));
  }
  // A failed apply puts back what it wrote and removes the file too.
  fs::create_directories(dir / "use_zero_pages");  // a folder: writing it fails
  EXPECT_THROW(
      (KsmSettingsGuard(ksm, {{"pages_to_scan", "777"}, {"use_zero_pages", "1"}}, store())),
      std::runtime_error);
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
  EXPECT_FALSE(fs::exists(state_file()));
}

TEST_F(KsmState, TheNextGuardPutsBackWhatADeadRunLeft) {
  const long pid = dead_pid();
  leave_a_dead_run(pid);
  const KsmSysfs ksm(dir);
  {
    KsmSettingsGuard g(ksm, {{"pages_to_scan", "2000"}, {"run", "1"}}, store());
    ASSERT_TRUE(g.recovered().has_value());
    EXPECT_EQ(*g.recovered(), fmt::format("restored host KSM settings left by an interrupted run "
                                          "(pid {}): run=0, pages_to_scan=100",
                                          pid));
    // What it saved as previous are the host's values, not the dead run's.
    ASSERT_EQ(g.saved().size(), 2U);
    EXPECT_EQ(g.saved()[0], (std::pair<std::string, std::string>{"pages_to_scan", "100"}));
    EXPECT_EQ(g.saved()[1], (std::pair<std::string, std::string>{"run", "0"}));
    EXPECT_EQ(first_line(dir / "pages_to_scan"), "2000");
    const json j = json::parse(whole_file(state_file()));
    EXPECT_EQ(j["pid"], static_cast<long>(getpid()));
    EXPECT_EQ(j["settings"][0]["original"], "100");
  }
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
  EXPECT_EQ(first_line(dir / "run"), "0");
  EXPECT_FALSE(fs::exists(state_file()));
}

TEST_F(KsmState, RecoveryAloneRestoresAndSaysSo) {
  leave_a_dead_run(dead_pid());
  const KsmSysfs ksm(dir);
  const std::optional<std::string> done = recover_ksm_settings(ksm, store());
  ASSERT_TRUE(done.has_value());
  EXPECT_NE(done->find("run=0, pages_to_scan=100"), std::string::npos) << *done;
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
  EXPECT_EQ(first_line(dir / "run"), "0");
  EXPECT_FALSE(fs::exists(state_file()));
  EXPECT_FALSE(recover_ksm_settings(ksm, store()).has_value());  // nothing left to do
}

// Our own pid with another start time: the pid was reused, the run that wrote it is gone.
TEST_F(KsmState, AReusedPidIsADeadRun) {
  const KsmSavedState me = ksm_state_of_this_process(dir);
  ASSERT_GT(me.pid_start, 0U);
  leave_a_dead_run(me.pid, me.pid_start + 1);
  const KsmSysfs ksm(dir);
  EXPECT_TRUE(recover_ksm_settings(ksm, store()).has_value());
  EXPECT_EQ(first_line(dir / "run"), "0");
}

TEST_F(KsmState, ALiveRunIsRefused) {
  const KsmSavedState me = ksm_state_of_this_process(dir);
  EXPECT_TRUE(ksm_state_owner_alive(me));
  leave_a_dead_run(me.pid, me.pid_start);  // alive: this process
  const std::string before = whole_file(state_file());
  const KsmSysfs ksm(dir);
  try {
    const KsmSettingsGuard g(ksm, {{"pages_to_scan", "2000"}, {"run", "1"}}, store());
    FAIL() << "expected an error";
  } catch (const KsmStateError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(fmt::format("another memvirt run (pid {}", me.pid)), std::string::npos)
        << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "5000");  // left as that run has it
  EXPECT_EQ(whole_file(state_file()), before);
}

TEST_F(KsmState, AKnobAnotherProgramChangedSinceIsLeftAlone) {
  leave_a_dead_run(dead_pid());
  put("pages_to_scan", "300");  // neither the host's 100 nor the run's 5000
  const KsmSysfs ksm(dir);
  const std::optional<std::string> done = recover_ksm_settings(ksm, store());
  ASSERT_TRUE(done.has_value());
  EXPECT_NE(done->find("run=0; left as another program set them since: pages_to_scan=300"),
            std::string::npos)
      << *done;
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "300");
  EXPECT_EQ(first_line(dir / "run"), "0");
}

TEST_F(KsmState, ACorruptStateFileIsAnErrorAndIsKept) {
  const KsmSysfs ksm(dir);
  put("run", "1");
  struct Case {
    const char* text;
    const char* expect;
  };
  const std::string other_root = json{
      {"format", "memvirt-ksm-state/1"},
      {"sysfs_root", "/elsewhere"},
      {"pid", 1},
      {"settings", json::array()}}.dump();
  const std::string escaping =
      json{{"format", "memvirt-ksm-state/1"},
           {"sysfs_root", dir.string()},
           {"pid", dead_pid()},
           {"settings", {{{"knob", "../x"}, {"original", "0"}, {"set", "1"}}}}}
          .dump();
  for (const Case& c :
       {Case{"{\"format\": \"memvirt-ksm-state/1\", \"pid\": ", "parse error"},
        Case{"", "parse error"}, Case{"[1, 2]", "not a JSON object"},
        Case{"{\"format\": \"something/9\"}", "format is not"},
        Case{"{\"format\": \"memvirt-ksm-state/1\"}", "sysfs_root"},
        Case{other_root.c_str(), "not of"}, Case{escaping.c_str(), "knob name '../x'"}}) {
    fs::create_directories(state);
    std::ofstream(state_file()) << c.text;
    try {
      const KsmSettingsGuard g(ksm, {{"pages_to_scan", "2000"}}, store());
      ADD_FAILURE() << "expected an error for: " << c.text;
    } catch (const KsmStateError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(state_file().string() + ": not a valid memvirt KSM state file", 0), 0U)
          << what;
      EXPECT_NE(what.find(c.expect), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
    EXPECT_EQ(whole_file(state_file()), c.text);  // never deleted, never rewritten
    EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
    EXPECT_EQ(first_line(dir / "run"), "1");
  }
}

TEST_F(KsmState, OneFilePerRoot) {
  const KsmStateStore s = store();
  EXPECT_EQ(s.file_for(dir), s.file_for(dir / "." / ".." / "ksm"));
  EXPECT_NE(s.file_for(dir), s.file_for(dir.string() + "2"));
  EXPECT_EQ(s.file_for(dir).parent_path(), state);
  const std::string name = KsmStateStore("/x").file_for("/sys/kernel/mm/ksm").filename().string();
  EXPECT_EQ(name.rfind("ksm-sys-kernel-mm-ksm-", 0), 0U) << name;
  EXPECT_EQ(name.substr(name.size() - 5), ".json") << name;
}

TEST(KsmStateDir, MemvirtStateDirWins) {
  const char* old = std::getenv("MEMVIRT_STATE_DIR");
  const std::string saved = old != nullptr ? old : "";
  setenv("MEMVIRT_STATE_DIR", "/some/where", 1);
  EXPECT_EQ(ksm_state_dir_from_environment(), fs::path("/some/where"));
  if (::access("/var/lib", W_OK) != 0) {  // not root: the user's state folder
    unsetenv("MEMVIRT_STATE_DIR");
    const char* xdg = std::getenv("XDG_STATE_HOME");
    const std::string saved_xdg = xdg != nullptr ? xdg : "";
    setenv("XDG_STATE_HOME", "/xdg/state", 1);
    EXPECT_EQ(ksm_state_dir_from_environment(), fs::path("/xdg/state/memvirt"));
    if (xdg != nullptr) {
      setenv("XDG_STATE_HOME", saved_xdg.c_str(), 1);
    } else {
      unsetenv("XDG_STATE_HOME");
    }
  }
  if (old != nullptr) {
    setenv("MEMVIRT_STATE_DIR", saved.c_str(), 1);
  } else {
    unsetenv("MEMVIRT_STATE_DIR");
  }
}

// A controller tuning KSM tick after tick (KsmSettingsGuard::set): each knob's original is
// saved before its first change and kept across later ones, and the state file names the
// value last written, so a crash after any number of changes still restores the host's own.
TEST_F(KsmState, SetKeepsTheOriginalAcrossChanges) {
  const KsmSysfs ksm(dir);
  {
    KsmSettingsGuard g(ksm, {}, store());
    EXPECT_FALSE(fs::exists(state_file()));  // nothing changed yet, nothing to keep
    g.set("pages_to_scan", "300");
    ASSERT_TRUE(fs::exists(state_file()));
    json j = json::parse(whole_file(state_file()));
    ASSERT_EQ(j["settings"].size(), 1U);
    EXPECT_EQ(j["settings"][0]["original"], "100");
    EXPECT_EQ(j["settings"][0]["set"], "300");
    g.set("run", "1");
    g.set("pages_to_scan", "600");
    EXPECT_EQ(first_line(dir / "pages_to_scan"), "600");
    EXPECT_EQ(first_line(dir / "run"), "1");
    j = json::parse(whole_file(state_file()));
    ASSERT_EQ(j["settings"].size(), 2U);
    EXPECT_EQ(j["settings"][0]["knob"], "pages_to_scan");
    EXPECT_EQ(j["settings"][0]["original"], "100");  // not 300: the host's, not ours
    EXPECT_EQ(j["settings"][0]["set"], "600");
    EXPECT_EQ(j["settings"][1]["knob"], "run");
    EXPECT_EQ(j["settings"][1]["original"], "0");
    EXPECT_EQ(g.saved().size(), 2U);
  }
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
  EXPECT_EQ(first_line(dir / "run"), "0");
  EXPECT_FALSE(fs::exists(state_file()));
}

TEST_F(KsmState, AfterACrashTheLastValueSetIsRecognisedAsTheRuns) {
  const KsmSysfs ksm(dir);
  KsmSettingsGuard g(ksm, {}, store());
  g.set("pages_to_scan", "300");
  g.set("pages_to_scan", "900");
  g.set("run", "1");
  // The guard's process "dies": its state file now names a pid that has exited.
  json j = json::parse(whole_file(state_file()));
  j["pid"] = dead_pid();
  j["pid_start_ticks"] = 0;
  std::ofstream(state_file()) << j.dump(2) << "\n";
  const std::optional<std::string> done = recover_ksm_settings(ksm, store());
  ASSERT_TRUE(done.has_value());
  EXPECT_NE(done->find("pages_to_scan=100"), std::string::npos) << *done;
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
  EXPECT_EQ(first_line(dir / "run"), "0");
  EXPECT_FALSE(fs::exists(state_file()));
}

TEST_F(KsmState, SetOfAMissingKnobOrAfterRestoreIsAnError) {
  const KsmSysfs ksm(dir);
  KsmSettingsGuard g(ksm, {}, store());
  EXPECT_THROW(g.set("no_such_knob", "1"), std::runtime_error);
  EXPECT_FALSE(fs::exists(state_file()));
  g.set("sleep_millisecs", "50");
  EXPECT_TRUE(g.restore().empty());
  EXPECT_EQ(first_line(dir / "sleep_millisecs"), "20");
  EXPECT_THROW(g.set("sleep_millisecs", "60"), std::logic_error);
  EXPECT_EQ(first_line(dir / "sleep_millisecs"), "20");
}

// The memvirt command itself, killed with SIGKILL while `bench dedup` has the fake KSM
// configured: the settings stay changed, and `memvirt restore` or the next run puts them back.
class KsmStateCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* b = std::getenv("MEMVIRT_BIN");
    if (b == nullptr) GTEST_SKIP() << "MEMVIRT_BIN not set: run this test through ctest";
    bin = b;
    base = testing::temp_dir();
    dir = base / "ksm";
    state = base / "state";
    proc = base / "proc";
    fs::remove_all(dir);
    fs::remove_all(state);
    fs::remove_all(proc);
    fs::create_directories(dir);
    for (const auto& [knob, value] : {std::pair{"run", "0"},
                                      {"pages_to_scan", "100"},
                                      {"sleep_millisecs", "20"},
                                      {"advisor_mode", "[none] scan-time"},
                                      {"use_zero_pages", "0"},
                                      {"smart_scan", "1"},
                                      {"pages_sharing", "0"},
                                      {"full_scans", "0"}}) {
      std::ofstream(dir / knob) << value << "\n";
    }
    // A ksmd for the phase to find and read the CPU time of.
    fs::create_directories(proc / "42");
    std::ofstream(proc / "42" / "comm") << "ksmd\n";
    std::ofstream(proc / "42" / "stat")
        << "42 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 250 150 0 0 25 5 1\n";
  }

  [[nodiscard]] std::vector<std::string> bench_args(const char* timeout_s) const {
    return {"bench",       "dedup",   "--ksm-sysfs", dir.string(),   "--proc",
            proc.string(), "--size",  "4MiB",        "--skip-model", "--skip-pageone",
            "--timeout",   timeout_s, "--sample-ms", "50",           "-q"};
  }

  // Starts memvirt with MEMVIRT_STATE_DIR set, its output in <name>.out and <name>.err.
  pid_t spawn(const std::vector<std::string>& args, const std::string& name) const {
    return testing::spawn_memvirt(bin, args, state, base / (name + ".out"), base / (name + ".err"));
  }

  // The exit status of a run to its end (-1 when killed by a signal).
  int run(const std::vector<std::string>& args, const std::string& name) const {
    return testing::wait_exit(spawn(args, name));
  }

  [[nodiscard]] std::string out(const std::string& name) const {
    return testing::whole_file(base / (name + ".out"));
  }
  [[nodiscard]] std::string err(const std::string& name) const {
    return testing::whole_file(base / (name + ".err"));
  }
  [[nodiscard]] std::size_t state_files() const {
    if (!fs::exists(state)) return 0;
    return static_cast<std::size_t>(
        std::distance(fs::directory_iterator(state), fs::directory_iterator()));
  }

  // Runs `bench dedup` until the fake KSM shows its settings, then SIGKILLs it. Returns the
  // pid killed, or 0 (with `skip` set when this kernel cannot run the phase).
  pid_t start_and_kill() {
    const pid_t pid = spawn(bench_args("120"), "killed");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (first_line(dir / "run") != "1") {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        const std::string o = out("killed");
        if (o.find("madvise(MADV_MERGEABLE) failed") != std::string::npos) {
          skip = "this kernel has no KSM for the phase: " + o;
          return 0;
        }
        ADD_FAILURE() << "memvirt ended before changing the settings:\n" << o << err("killed");
        return 0;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ADD_FAILURE() << "the settings did not change within 120 s";
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(state_files(), 1U);  // the originals were on disk before `run` changed
    EXPECT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    // Killed: nothing put the settings back.
    EXPECT_EQ(first_line(dir / "run"), "1");
    EXPECT_EQ(first_line(dir / "pages_to_scan"), "1000");
    EXPECT_EQ(first_line(dir / "advisor_mode"), "none");  // written as the word alone
    EXPECT_EQ(state_files(), 1U);
    return pid;
  }

  void expect_originals() const {
    EXPECT_EQ(first_line(dir / "run"), "0");
    EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
    EXPECT_EQ(first_line(dir / "sleep_millisecs"), "20");
    EXPECT_EQ(first_line(dir / "use_zero_pages"), "0");
    EXPECT_EQ(first_line(dir / "smart_scan"), "1");
    EXPECT_EQ(state_files(), 0U);
  }

  std::string bin;
  fs::path base, dir, state, proc;
  std::string skip;  // why start_and_kill() could not run the phase here
};

TEST_F(KsmStateCommand, RestoreAfterSigkillPutsTheSettingsBack) {
  const pid_t killed = start_and_kill();
  if (!skip.empty()) GTEST_SKIP() << skip;
  if (killed == 0) return;
  ASSERT_EQ(run({"restore", "--ksm-sysfs", dir.string()}, "restore"), 0) << err("restore");
  EXPECT_NE(out("restore").find(fmt::format(
                "restored host KSM settings left by an interrupted run (pid {}): run=0, ", killed)),
            std::string::npos)
      << out("restore");
  EXPECT_NE(out("restore").find("pages_to_scan=100"), std::string::npos) << out("restore");
  expect_originals();
  // Once more: nothing to do, still status 0.
  ASSERT_EQ(run({"restore", "--ksm-sysfs", dir.string()}, "again"), 0) << err("again");
  EXPECT_NE(out("again").find("nothing to restore"), std::string::npos) << out("again");
}

TEST_F(KsmStateCommand, TheNextRunAfterSigkillRestoresFirst) {
  const pid_t killed = start_and_kill();
  if (!skip.empty()) GTEST_SKIP() << skip;
  if (killed == 0) return;
  ASSERT_EQ(run(bench_args("1"), "next"), 0) << err("next");
  EXPECT_NE(err("next").find(fmt::format(
                "memvirt: restored host KSM settings left by an interrupted run (pid {}): run=0",
                killed)),
            std::string::npos)
      << err("next");
  // It then measured KSM (with the host's values as "previous"), and put them back after.
  EXPECT_EQ(out("next").find("already running"), std::string::npos) << out("next");
  expect_originals();
}

TEST_F(KsmStateCommand, ACorruptStateFileIsOneLineAndStatusTwo) {
  fs::create_directories(state);
  const fs::path file = KsmStateStore(state).file_for(dir);
  std::ofstream(file) << "{ not json";
  ASSERT_EQ(run({"restore", "--ksm-sysfs", dir.string()}, "corrupt"), 2);
  const std::string e = err("corrupt");
  EXPECT_EQ(e.rfind("memvirt: " + file.string() + ": not a valid memvirt KSM state file", 0), 0U)
      << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  EXPECT_EQ(whole_file(file), "{ not json");
  // `bench dedup` refuses the same way, changing nothing.
  ASSERT_EQ(run(bench_args("1"), "bench-corrupt"), 2) << out("bench-corrupt");
  EXPECT_NE(err("bench-corrupt").find(file.string()), std::string::npos) << err("bench-corrupt");
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "100");
  EXPECT_EQ(whole_file(file), "{ not json");
}

// A state file whose run still lives (this test process): restore refuses, changing nothing.
TEST_F(KsmStateCommand, RestoreRefusesWhileTheRunLives) {
  KsmSavedState me = ksm_state_of_this_process(dir);
  me.knobs = {{"pages_to_scan", "100", "5000"}};
  KsmStateStore(state).save(me);
  std::ofstream(dir / "pages_to_scan") << "5000\n";
  const std::string before = whole_file(KsmStateStore(state).file_for(dir));
  ASSERT_EQ(run({"restore", "--ksm-sysfs", dir.string()}, "live"), 2);
  const std::string e = err("live");
  EXPECT_NE(e.find(fmt::format("memvirt: another memvirt run (pid {}", getpid())),
            std::string::npos)
      << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  EXPECT_EQ(first_line(dir / "pages_to_scan"), "5000");
  EXPECT_EQ(whole_file(KsmStateStore(state).file_for(dir)), before);
}

}  // namespace
}  // namespace memvirt
