// Real QEMU guests running the Debian cloud kernel (TCG where KVM cannot boot them): free
// page reporting returns memory to the host and its absence returns none, a guest's files on
// its virtio disk go through its page cache, zswap stores pages in a guest of the generic
// kernel, and failures
// (QEMU exiting early, a guest kernel panic, a silent guest, Ctrl-C) end every QEMU process
// and leave no temporary files. These tests start QEMU and take about a minute together;
// they skip, with the reason, only where QEMU cannot start at all.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "lab/image.hpp"
#include "lab/lab_config.hpp"
#include "lab/lab_error.hpp"
#include "lab/lab_run.hpp"
#include "lab/process.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

// The processes whose command line mentions `text` (the run's output folder).
std::vector<pid_t> processes_mentioning(const std::string& text) {
  std::vector<pid_t> found;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string n = e.path().filename().string();
    if (n.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(text) != std::string::npos && std::stoi(n) != getpid()) {
      found.push_back(std::stoi(n));
    }
  }
  return found;
}

class LabGuest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string qemu = ChildProcess::find_program("qemu-system-x86_64");
    if (qemu.empty()) {
      GTEST_SKIP() << "SKIPPED LOUDLY: qemu-system-x86_64 is not installed, so no guest can "
                      "start (bash scripts/setup.sh installs it)";
    }
    if (std::system((qemu + " --version > /dev/null 2>&1").c_str()) != 0) {
      GTEST_SKIP() << "SKIPPED LOUDLY: " << qemu << " --version fails: QEMU cannot start here";
    }
    root_ = fs::temp_directory_path() /
            fmt::format("memvirt-lab-test-{}-{}", getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }

  Scenario scenario(const std::string& name, const std::string& extra) {
    const std::string file = (root_ / (name + ".yaml")).string();
    std::ofstream(file) << "name: " << name << R"(
host: {memory: 4GiB}
vm:
  memory: 256MiB
  workloads:
    - {type: memhog, size: 128MiB, start: 1s, hold: 1s, then: exit}
experiment: {type: fixed, duration: 20s, sample_interval: 500ms}
)" << extra;
    return load_scenario(file, {}, {lab_extension()});
  }

  // The run's temporary files are gone and no process mentions its folder.
  void expect_clean(const fs::path& out) {
    for (const auto& e : fs::recursive_directory_iterator(out)) {
      const std::string n = e.path().filename().string();
      EXPECT_NE(n, "qmp.sock") << e.path();
      EXPECT_NE(n, "initramfs.cpio") << e.path();
      EXPECT_NE(n, "disk.img") << e.path();
    }
    EXPECT_TRUE(processes_mentioning(out.string()).empty()) << "a QEMU process outlived the run";
  }

  std::string failure_of(const Scenario& s, const fs::path& out) {
    LabRunOptions opt;
    opt.out_dir = out.string();
    try {
      run_lab(s, opt);
    } catch (const LabError& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path root_;
};

struct Trajectory {
  double before = 0, peak = 0, end = 0;  // guest RAM on the host (PSS), GiB
};

Trajectory trajectory(const LabRun& r, double touched_at) {
  const TimeSeries& ts = r.result.run.series;
  const auto& cols = ts.columns();
  const auto used = std::find(cols.begin(), cols.end(), "host_used_gib") - cols.begin();
  Trajectory t;
  for (const auto& row : ts.rows()) {
    if (row[0] < touched_at - 1.5) t.before = row[used];
    t.peak = std::max(t.peak, row[used]);
  }
  t.end = ts.rows().back()[used];
  return t;
}

double marker_time(const LabRun& r, const std::string& tag, const std::string& event) {
  for (const auto& m : r.markers) {
    if (m.tag == tag && m.event == event) return m.host_s;
  }
  return -1;
}

TEST_F(LabGuest, FreePageReportingReturnsMemoryAndNoReportingReturnsNone) {
  const Scenario with = scenario("reporting", "reclaim: [{impl: reporting, order: 9}]\n");
  const Scenario without = scenario("no-reporting", "");
  // Both guests at once: about 20 s instead of 40.
  auto run = [&](const Scenario& s) {
    LabRunOptions opt;
    opt.out_dir = (root_ / s.name).string();
    return run_lab(s, opt);
  };
  auto f_with = std::async(std::launch::async, run, std::cref(with));
  auto f_without = std::async(std::launch::async, run, std::cref(without));
  const LabRun r_with = f_with.get();
  const LabRun r_without = f_without.get();

  constexpr double kMemhog = 128.0 / 1024;  // GiB
  for (const LabRun* r : {&r_with, &r_without}) {
    const double touched = marker_time(*r, "w0", "touched");
    const double end = marker_time(*r, "w0", "end");
    ASSERT_GT(touched, 0) << "the memhog never finished touching";
    ASSERT_GT(end, touched);
    const Trajectory t = trajectory(*r, touched);
    // The host backed the memory the guest touched: not all 128 MiB are new to it, since
    // the guest hands out again pages it touched while booting (the unpacked initramfs,
    // the kernel's decompression buffers) and freed.
    EXPECT_GT(t.peak - t.before, 0.5 * kMemhog) << "before " << t.before << " peak " << t.peak;
    EXPECT_EQ(r->result.run.vms, 1u);
    EXPECT_GT(r->result.run.cpu[0].cpu_seconds, 0.5);
  }
  const Trajectory tw = trajectory(r_with, marker_time(r_with, "w0", "touched"));
  const Trajectory to = trajectory(r_without, marker_time(r_without, "w0", "touched"));
  // Reporting hands the freed memory back (order-9 blocks: most of the 128 MiB).
  EXPECT_LT(tw.end, tw.peak - 0.5 * kMemhog) << "peak " << tw.peak << " end " << tw.end;
  // Without reporting the host keeps every page the guest touched.
  EXPECT_GT(to.end, to.peak - 4.0 / 1024) << "peak " << to.peak << " end " << to.end;
  EXPECT_EQ(r_with.info["accel"], r_without.info["accel"]);
  expect_clean(root_ / with.name);
  expect_clean(root_ / without.name);

  // The outputs the simulator writes, plus the lab's.
  write_lab_outputs((root_ / with.name).string(), with, r_with);
  for (const char* f : {"results.json", "timeseries.csv", "config.yaml", "markers.csv", "lab.json",
                        "vm0/console.log"}) {
    EXPECT_TRUE(fs::exists(root_ / with.name / f)) << f;
  }
}

// A guest with a virtio disk: its files are read through the real page cache (which the host
// then backs), a written file is flushed to the disk, and the swap partition is enabled.
TEST_F(LabGuest, DiskFilesGoThroughThePageCache) {
  const std::string file = (root_ / "disk.yaml").string();
  std::ofstream(file) << R"(name: disk
host: {memory: 4GiB}
vm:
  memory: 256MiB
  disk: 256MiB
  kernel: {swap: 32MiB, dirty_expire: 1s, dirty_writeback: 1s}
  workloads:
    - {type: file_reader, files: 2, size: 48MiB, start: 1s}
    - {type: file_reader, files: 1, size: 16MiB, write: true, start: 1s}
experiment: {type: fixed, duration: 12s, sample_interval: 500ms}
)";
  const Scenario s = load_scenario(file, {}, {lab_extension()});
  LabRunOptions opt;
  opt.out_dir = (root_ / "out").string();
  const LabRun r = run_lab(s, opt);
  const RunResult& run = r.result.run;
  ASSERT_TRUE(run.completion_s.has_value()) << "the workloads did not finish";
  EXPECT_EQ(run.workload_cycles, 2u);
  // Everything read came from the disk once; the writes reached it.
  EXPECT_GE(run.sectors_read, 96ULL * 2048);
  EXPECT_LT(run.sectors_read, 96ULL * 2048 + 8192);
  EXPECT_GE(run.sectors_written, 16ULL * 2048);
  const TimeSeries& ts = run.series;
  const auto& cols = ts.columns();
  const auto col = [&](const char* name) {
    return static_cast<std::size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
  };
  ASSERT_LT(col("guest_cached_gib"), cols.size());
  double cached = 0, host = 0;
  for (const auto& row : ts.rows()) {
    cached = std::max(cached, row[col("guest_cached_gib")]);
    host = std::max(host, row[col("host_used_gib")]);
  }
  EXPECT_GT(cached, 100.0 / 1024) << "the files did not stay in the page cache";
  EXPECT_GT(host, cached) << "the host did not back the page cache";
  std::string swap_total;
  for (const auto& m : r.markers) {
    if (m.event == "meminfo") swap_total = m.field("swap_total");
  }
  EXPECT_GE(std::stoull("0" + swap_total), 31ULL << 20) << "no swap partition";
  EXPECT_FALSE(fs::exists(root_ / "out" / "vm0" / "disk.img"));
  expect_clean(root_ / "out");
}

// zswap in a guest of Debian's generic kernel: memhog's compressible pages (two to a zbud
// page) fill the pool up to max_pool_percent, the rest go to the swap partition, and the
// debugfs counters reach results.json and the time series.
TEST_F(LabGuest, ZswapStoresPagesInTheGenericKernel) {
  if (find_kernel(KernelFlavour::kGeneric).empty()) {
    GTEST_SKIP() << "SKIPPED LOUDLY: no Debian generic kernel in /boot (vmlinuz-<version>-amd64), "
                    "which the lab's zswap needs (the cloud kernel has none): install "
                    "linux-image-amd64 (bash scripts/setup.sh)";
  }
  const std::string file = (root_ / "zswap.yaml").string();
  std::ofstream(file) << R"(name: zswap
host: {memory: 4GiB}
vm:
  memory: 256MiB
  disk: 512MiB
  kernel: {swap: 384MiB}
  workloads:
    - {type: memhog, size: 320MiB, start: 1s, hold: 600s, content: header}
reclaim: [{impl: zswap}]
experiment: {type: fixed, duration: 25s, sample_interval: 1s}
)";
  const Scenario s = load_scenario(file, {}, {lab_extension()});
  LabRunOptions opt;
  opt.out_dir = (root_ / "out").string();
  const LabRun r = run_lab(s, opt);
  EXPECT_EQ(r.info["image"]["kernel_flavour"], "generic");
  const RunResult& run = r.result.run;
  ASSERT_TRUE(run.zswap.has_value());
  const RunResult::Zswap& z = *run.zswap;
  ASSERT_GT(z.pool_pages_max, 0u) << "zswap stored nothing: did memhog finish touching?";
  // 20% of the guest's ~210 MiB of MemTotal is about 10,700 pool pages of two pages each.
  EXPECT_GT(z.stored_pages_max, 8000u);
  EXPECT_GE(z.stored_pages_max, z.stored_pages_end);
  EXPECT_GE(z.pool_pages_max, z.pool_pages_end);
  const double per_page =
      static_cast<double>(z.stored_pages_end) / static_cast<double>(z.pool_pages_end);
  EXPECT_GT(per_page, 1.8);
  EXPECT_LE(per_page, 2.0);
  EXPECT_GT(run.pswpout, 1000u) << "the full pool sends the rest to the swap partition";
  EXPECT_GE(run.sectors_written, run.pswpout * 8);
  EXPECT_EQ(r.result.run.stats["reclaim"][0]["impl"], "zswap");
  EXPECT_TRUE(r.result.run.stats["reclaim"][0].contains("reject_compress_poor"));
  const auto& cols = run.series.columns();
  const auto col = std::find(cols.begin(), cols.end(), "reclaim[0].zswap_stored_pages");
  ASSERT_NE(col, cols.end());
  EXPECT_EQ(run.series.rows().back()[static_cast<std::size_t>(col - cols.begin())],
            static_cast<double>(z.stored_pages_end));
  EXPECT_NE(std::find(cols.begin(), cols.end(), "reclaim[0].zswap_pool_pages"), cols.end());
  expect_clean(root_ / "out");
}

TEST_F(LabGuest, QemuExitingEarlyNamesTheVm) {
  const Scenario s = scenario("early-exit", "lab: {qemu: /bin/false, accel: tcg}\n");
  const std::string e = failure_of(s, root_ / "out");
  EXPECT_NE(e.find("vm0: QEMU exited at start (exit status 1)"), std::string::npos) << e;
  expect_clean(root_ / "out");
}

TEST_F(LabGuest, GuestKernelPanicNamesTheVm) {
  // No init in the initramfs: the kernel panics, QEMU stops (-no-reboot).
  const Scenario s = scenario("panic", "lab: {kernel_args: rdinit=/nonexistent}\n");
  const std::string e = failure_of(s, root_ / "out");
  EXPECT_TRUE(e.find("vm0: guest kernel panic") != std::string::npos ||
              e.find("vm0: QEMU exited early") != std::string::npos)
      << e;
  expect_clean(root_ / "out");
}

TEST_F(LabGuest, SilentGuestTimesOut) {
  // An init that never prints a marker (cat waits for console input forever).
  const Scenario s = scenario("silent", "lab: {kernel_args: rdinit=/bin/cat, boot_timeout: 8s}\n");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e = failure_of(s, root_ / "out");
  EXPECT_NE(e.find("vm0: the guest printed no marker within 8"), std::string::npos) << e;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
  expect_clean(root_ / "out");
}

TEST_F(LabGuest, InterruptEndsGuestsAndRestores) {
  const char* bin = std::getenv("MEMVIRT_BIN");
  if (bin == nullptr) GTEST_SKIP() << "MEMVIRT_BIN not set: run this test through ctest";
  const Scenario s = scenario("interrupt", "");
  const fs::path out = root_ / "out";
  const std::string err = (root_ / "stderr.txt").string();
  ChildProcess memvirt("memvirt", {bin, "run", s.file, "--backend", "lab", "-o", out.string()},
                       err);
  // Wait until the guest has started its workloads, then Ctrl-C.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  bool started = false;
  while (!started && std::chrono::steady_clock::now() < deadline && memvirt.running()) {
    started = testing::whole_file(err).find("init start") != std::string::npos;
    if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    memvirt.poll_exit();
  }
  ASSERT_TRUE(started) << "the guest never started";
  kill(memvirt.pid(), SIGINT);
  std::optional<std::string> exit;
  for (int i = 0; i < 200 && !(exit = memvirt.poll_exit()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(exit.has_value()) << "memvirt did not stop within 10 s of SIGINT";
  EXPECT_EQ(*exit, "exit status 3");
  const std::string text = testing::whole_file(err);
  EXPECT_NE(text.find("memvirt: lab: stopped by Interrupt"), std::string::npos) << text;
  expect_clean(out);
}

}  // namespace
}  // namespace memvirt
