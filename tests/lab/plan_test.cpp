// Scenario files read for the lab: what the guests are told to run, what the host sets up,
// and the clear refusals for what a stock kernel and QEMU cannot do.
#include "lab/plan.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/rng.hpp"
#include "lab/qemu_command.hpp"
#include "test_util.hpp"
#include "workload/memhog.hpp"
#include "workload/periodic_alloc.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

class LabPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("memvirt-plan-test-{}", getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // Writes a scenario with the given reclaim and workload sections and loads it.
  Scenario load(const std::string& body) {
    const std::string file = (dir_ / "s.yaml").string();
    std::ofstream(file) << "name: plan-test\nhost: {memory: 8GiB}\n" << body;
    return load_scenario(file, {}, {lab_extension()});
  }
  std::string error_of(const std::string& body) {
    try {
      make_lab_plan(load(body));
    } catch (const InputError& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path dir_;
};

const char* kVm = R"(vm:
  memory: 1GiB
  workloads:
    - {type: memhog, size: 600MiB, start: 5s, hold: 2s, then: exit, repeat: 2, interval: 40s}
)";

std::string file_of(const LabVm& vm, const std::string& path) {
  for (const auto& [p, data] : vm.files) {
    if (p == path) return data;
  }
  return {};
}

TEST_F(LabPlanTest, ReportingOrderIsWrittenAfterTheDriverLoads) {
  const LabPlan plan = make_lab_plan(load(std::string(kVm) + R"(reclaim:
  - {impl: reporting, order: 0}
experiment: {type: fixed, vms: 2, duration: 90s}
)"));
  EXPECT_TRUE(plan.reporting);
  EXPECT_EQ(plan.reporting_order, 0u);
  ASSERT_EQ(plan.vms.size(), 2u);
  const std::string sh = file_of(plan.vms[1], "etc/memvirt/vm.sh");
  EXPECT_NE(sh.find("set init /sys/module/page_reporting/parameters/page_reporting_order 0"),
            std::string::npos)
      << sh;
  EXPECT_NE(sh.find("memhog w0 size=629145600 start=5000000000 hold=2000000000 then=exit "
                    "repeat=2 interval=40000000000"),
            std::string::npos)
      << sh;
  EXPECT_EQ(plan.vms[1].name, "vm1");
  EXPECT_FALSE(plan.ksm);
}

TEST_F(LabPlanTest, NoReportingWritesNoOrder) {
  const LabPlan plan =
      make_lab_plan(load(std::string(kVm) + "experiment: {type: fixed, duration: 10s}\n"));
  EXPECT_FALSE(plan.reporting);
  EXPECT_EQ(file_of(plan.vms[0], "etc/memvirt/vm.sh").find("page_reporting"), std::string::npos);
}

TEST_F(LabPlanTest, KsmSettingsGoToSysfs) {
  const LabPlan plan = make_lab_plan(load(std::string(kVm) + R"(reclaim:
  - {impl: ksm, pages_to_scan: 1000, sleep_millisecs: 10, use_zero_pages: true}
experiment: {type: fixed, vms: 4, duration: 60s}
)"));
  EXPECT_TRUE(plan.ksm);
  const std::vector<std::pair<std::string, std::string>> want = {{"pages_to_scan", "1000"},
                                                                 {"sleep_millisecs", "10"},
                                                                 {"max_page_sharing", "256"},
                                                                 {"use_zero_pages", "1"},
                                                                 {"smart_scan", "1"}};
  EXPECT_EQ(plan.ksm_settings, want);
}

TEST_F(LabPlanTest, BalloonTargetsAndStats) {
  const LabPlan plan = make_lab_plan(load(std::string(kVm) + R"(reclaim:
  - impl: balloon
    deflate_on_oom: true
    stats_interval: 2s
    targets: [{at: 10s, size: 256MiB}, {at: 20s, size: 0B}]
experiment: {type: fixed, duration: 30s}
)"));
  EXPECT_TRUE(plan.deflate_on_oom);
  EXPECT_EQ(plan.stats_interval, Duration::seconds(2));
  ASSERT_EQ(plan.targets.size(), 2u);
  EXPECT_EQ(plan.targets[0].at, Duration::seconds(10));
  EXPECT_EQ(plan.targets[0].size, Bytes{256ULL << 20});
}

TEST_F(LabPlanTest, PeriodicAllocUsesTheSimulatorsDraws) {
  const Scenario sim = load(R"(seed: 7
vm:
  memory: 1GiB
  workloads:
    - type: periodic_alloc
      period: 10s
      amount: {dist: uniform, min: 0B, max: 512MiB}
      mean_in_use: 100MiB
experiment: {type: fixed, duration: 60s}
)");
  const LabPlan plan = make_lab_plan(sim);
  // The draws the simulator's PeriodicAlloc makes for VM 0: phase first, then amounts.
  PeriodicAlloc::Draws draws(*sim.vm.workloads[0]->as<PeriodicAlloc>(), 7, 0, 0);
  const std::uint64_t phase = static_cast<std::uint64_t>(draws.phase().ns());
  const std::string sh = file_of(plan.vms[0], "etc/memvirt/vm.sh");
  EXPECT_NE(sh.find(fmt::format("phase={} amounts=/etc/memvirt/w0.amounts mean_in_use={}", phase,
                                100ULL << 20)),
            std::string::npos)
      << sh;
  const std::string amounts = file_of(plan.vms[0], "etc/memvirt/w0.amounts");
  std::istringstream in(amounts);
  std::uint64_t first = 0;
  in >> first;
  EXPECT_EQ(first, draws.amount().value());
  EXPECT_GE(std::count(amounts.begin(), amounts.end(), '\n'), 6);
}

TEST_F(LabPlanTest, HintingIsRefusedNamingTheLine) {
  const std::string e = error_of(std::string(kVm) + R"(reclaim:
  - {impl: hinting}
)");
  EXPECT_NE(e.find("s.yaml:8: reclaim[0].impl: lab backend: free page hinting"), std::string::npos)
      << e;
}

TEST_F(LabPlanTest, MadvFreeDiscardIsRefused) {
  const std::string e = error_of(std::string(kVm) + R"(reclaim:
  - impl: reporting
    discard: free
)");
  EXPECT_NE(e.find(":9: reclaim[0].discard: lab backend: QEMU discards"), std::string::npos) << e;
}

TEST_F(LabPlanTest, CompiledInReportingConstantsAreRefused) {
  EXPECT_NE(error_of(std::string(kVm) + "reclaim: [{impl: reporting, delay: 1s}]\n")
                .find("PAGE_REPORTING_DELAY"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kVm) + "reclaim: [{impl: reporting, capacity: 64}]\n")
                .find("PAGE_REPORTING_CAPACITY"),
            std::string::npos);
}

TEST_F(LabPlanTest, PoliciesAreSimulatorOnlySoFar) {
  const std::string e = error_of(std::string(kVm) +
                                 "reclaim: [{impl: balloon, stats_interval: 2s, "
                                 "deflate_on_oom: true}]\n"
                                 "policy: {impl: memvirt, min_memory: 256MiB}\n");
  EXPECT_NE(e.find("s.yaml:8: policy.impl: lab backend: policies run in the simulator only"),
            std::string::npos)
      << e;
  EXPECT_NE(error_of(std::string(kVm) + "reclaim: [{impl: ksm, run: false}]\n")
                .find("reclaim[0].run: lab backend: the lab runs the host's KSM"),
            std::string::npos);
}

TEST_F(LabPlanTest, DensityIsSimulatorOnly) {
  const std::string e = error_of(std::string(kVm) + "experiment: {type: density}\n");
  EXPECT_NE(e.find("experiment.type: lab backend: experiment type 'density' is simulator-only"),
            std::string::npos)
      << e;
}

TEST_F(LabPlanTest, ReplicatesAreSimulatorOnly) {
  const std::string e = error_of(std::string(kVm) + "experiment:\n  replicates: 3\n");
  EXPECT_NE(e.find("s.yaml:8: experiment.replicates: lab backend: the lab runs its guests once"),
            std::string::npos)
      << e;
}

TEST_F(LabPlanTest, LabSectionIsReadAndChecked) {
  const Scenario s = load(std::string(kVm) + R"(lab:
  accel: tcg
  boot_timeout: 20s
  kernel_args: "mitigations=off"
)");
  EXPECT_EQ(lab_config(s).accel, "tcg");
  EXPECT_EQ(lab_config(s).boot_timeout, Duration::seconds(20));
  EXPECT_NE(guest_kernel_command_line(make_lab_plan(s)).find("console=ttyS0"), std::string::npos);
  EXPECT_NE(guest_kernel_command_line(make_lab_plan(s)).find("mitigations=off"), std::string::npos);
  try {
    load(std::string(kVm) + "lab: {acel: kvm}\n");
    FAIL() << "an unknown lab key must be an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("lab.acel: unknown key"), std::string::npos) << e.what();
  }
}

const char* kFileVm = R"(seed: 3
vm:
  memory: 1GiB
  disk: 4GiB
  kernel: {swap: 512MiB, read_ahead: 256KiB, swappiness: 30}
  workloads:
    - {type: file_reader, files: 3, size: 512MiB, request: 64KiB, passes: 2, start: 5s}
    - {type: file_reader, files: 2, size: 8MiB, shared: false, pattern: random, rate: 10MiB}
    - {type: file_reader, files: 1, size: 16MiB, write: true}
)";

TEST_F(LabPlanTest, FileReaderGetsADiskWithTheSimulatorsFiles) {
  const LabPlan plan = make_lab_plan(
      load(std::string(kFileVm) + "experiment: {type: fixed, vms: 2, duration: 60s}\n"));
  ASSERT_EQ(plan.vms.size(), 2u);
  ASSERT_TRUE(plan.vms[0].disk.has_value());
  const DiskSpec& d = *plan.vms[0].disk;
  // The filesystem from 1 MiB to the swap partition, which ends the disk.
  EXPECT_EQ(d.layout.size, 4ULL << 30);
  EXPECT_EQ(d.layout.fs_offset, 1ULL << 20);
  EXPECT_EQ(d.layout.swap_bytes, 512ULL << 20);
  EXPECT_EQ(d.layout.swap_offset, (4ULL << 30) - (512ULL << 20));
  EXPECT_EQ(d.layout.fs_offset + d.layout.fs_bytes, d.layout.swap_offset);
  // Shared files: the image's contents, as the simulator's file_reader names them; own files:
  // the VM's draw; written files are not on the image, only their folder.
  ASSERT_EQ(d.files.size(), 5u);
  EXPECT_EQ(d.files[0].path, "w0/f0");
  EXPECT_EQ(d.files[2].path, "w0/f2");
  EXPECT_EQ(d.files[0].bytes, 512ULL << 20);
  EXPECT_EQ(d.files[0].content, name_hash("files"));
  EXPECT_EQ(d.files[2].content, name_hash("files") + 2);
  EXPECT_EQ(d.files[3].path, "w1/f0");
  EXPECT_EQ(d.files[4].content, splitmix64(3 ^ splitmix64(0 * 7919 + 1 + 1)));
  EXPECT_EQ(d.dirs, std::vector<std::string>{"w2"});
  const DiskSpec& d1 = *plan.vms[1].disk;
  EXPECT_EQ(d1.files[0].content, d.files[0].content);  // shared: the same in every VM
  EXPECT_EQ(d1.files[3].content, splitmix64(3 ^ splitmix64(1 * 7919 + 0 + 1)));
  EXPECT_NE(disk_digest(d), disk_digest(d1));

  const std::string sh = file_of(plan.vms[0], "etc/memvirt/vm.sh");
  EXPECT_NE(sh.find("mount -t ext4 -o noatime /dev/vda1 /mnt/disk || "), std::string::npos) << sh;
  EXPECT_NE(sh.find("swapon /dev/vda2 || "), std::string::npos) << sh;
  EXPECT_LT(sh.find("mount -t ext4"), sh.find("file_reader w0"));
  EXPECT_NE(sh.find("file_reader w0 dir=/mnt/disk/w0 files=3 size=536870912 request=65536 "
                    "pattern=sequential passes=2 rate=0 start=5000000000 write=0 seed="),
            std::string::npos)
      << sh;
  EXPECT_NE(sh.find("file_reader w1 dir=/mnt/disk/w1 files=2 size=8388608 request=131072 "
                    "pattern=random passes=1 rate=10485760 start=0 write=0"),
            std::string::npos)
      << sh;
  EXPECT_NE(sh.find("file_reader w2 dir=/mnt/disk/w2 files=1 size=16777216"), std::string::npos);
  EXPECT_NE(sh.find(" write=1 "), std::string::npos);
  // The kernel's reclaim, writeback and readahead settings.
  const auto has = [&](const std::string& path, const std::string& value) {
    return std::find(plan.vms[0].settings.begin(), plan.vms[0].settings.end(),
                     std::make_pair(path, value)) != plan.vms[0].settings.end();
  };
  EXPECT_TRUE(has("/sys/block/vda/queue/read_ahead_kb", "256"));
  EXPECT_TRUE(has("/proc/sys/vm/swappiness", "30"));
  EXPECT_TRUE(has("/proc/sys/vm/dirty_expire_centisecs", "3000"));
  EXPECT_TRUE(has("/proc/sys/vm/page-cluster", "3"));
  // The host's disk bandwidth limits each guest's disk; the seek is noted as not applied.
  EXPECT_EQ(plan.disk_bandwidth, 100'000'000u);
  const auto noted = [&](const std::string& text) {
    return std::any_of(plan.notes.begin(), plan.notes.end(),
                       [&](const std::string& n) { return n.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(noted("host.disk.seek"));
  EXPECT_TRUE(noted("vm.workloads[1].pattern random"));
}

TEST_F(LabPlanTest, NoDiskNoDiskSettings) {
  const LabPlan plan =
      make_lab_plan(load(std::string(kVm) + "experiment: {type: fixed, duration: 10s}\n"));
  EXPECT_FALSE(plan.vms[0].disk.has_value());
  EXPECT_EQ(file_of(plan.vms[0], "etc/memvirt/vm.sh").find("mount"), std::string::npos);
  for (const auto& [path, value] : plan.vms[0].settings)
    EXPECT_EQ(path.find("vda"), std::string::npos);
}

TEST_F(LabPlanTest, DiskThrottleCanBeTurnedOff) {
  const LabPlan plan = make_lab_plan(load(std::string(kFileVm) +
                                          "experiment: {type: fixed, duration: 10s}\n"
                                          "lab: {disk_throttle: false, disk_cache: writeback}\n"));
  EXPECT_EQ(plan.disk_bandwidth, 0u);
  EXPECT_EQ(plan.lab.disk_cache, DiskCache::kWriteback);
}

TEST_F(LabPlanTest, FilesLargerThanTheDiskAreRefused) {
  const std::string e = error_of(R"(vm:
  memory: 1GiB
  disk: 1GiB
  workloads:
    - {type: file_reader, files: 2, size: 512MiB}
)");
  EXPECT_NE(e.find("vm.disk: lab backend: the workloads' files need about"), std::string::npos)
      << e;
}

// A guest with a swap partition and a memhog of compressible pages, for zswap.
const char* kZswapVm = R"(seed: 5
vm:
  memory: 512MiB
  disk: 1GiB
  kernel: {swap: 768MiB}
  workloads:
    - {type: memhog, size: 640MiB, start: 5s, hold: 60s, content: header}
experiment: {type: fixed, duration: 30s}
)";

TEST_F(LabPlanTest, ZswapFieldsGoToItsModuleParametersBeforeEnabled) {
  const LabPlan plan = make_lab_plan(load(std::string(kZswapVm) + R"(reclaim:
  - impl: zswap
    compressor: lz4
    max_pool_percent: 30
    accept_threshold_percent: 80
    same_filled_pages: false
)"));
  ASSERT_TRUE(plan.zswap_entry.has_value());
  EXPECT_EQ(*plan.zswap_entry, 0u);
  EXPECT_EQ(plan.kernel_flavour, KernelFlavour::kGeneric);  // auto: zswap needs it
  const std::vector<std::string> modules = {"zswap", "zbud", "lz4"};
  EXPECT_EQ(plan.guest_modules, modules);
  // The parameters in this order, enabled last.
  const std::string dir = "/sys/module/zswap/parameters/";
  const std::vector<std::pair<std::string, std::string>> want = {
      {dir + "compressor", "lz4"},
      {dir + "zpool", "zbud"},
      {dir + "max_pool_percent", "30"},
      {dir + "accept_threshold_percent", "80"},
      {dir + "same_filled_pages_enabled", "N"},
      {dir + "enabled", "Y"}};
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& kv : plan.vms[0].settings) {
    if (kv.first.starts_with(dir)) got.push_back(kv);
  }
  EXPECT_EQ(got, want);
  const std::string sh = file_of(plan.vms[0], "etc/memvirt/vm.sh");
  // debugfs and the modules before the settings; the settings before swapon and the sampler.
  const auto at = [&](const std::string& text) {
    const auto p = sh.find(text);
    EXPECT_NE(p, std::string::npos) << text << " not in\n" << sh;
    return p;
  };
  EXPECT_LT(at("mount -t debugfs none /sys/kernel/debug"), at("load_module zswap\n"));
  EXPECT_LT(at("load_module zswap\n"), at("load_module zbud\n"));
  EXPECT_LT(at("load_module zbud\n"), at("load_module lz4\n"));
  EXPECT_LT(at("load_module lz4\n"), at("set init " + dir + "compressor lz4"));
  EXPECT_LT(at("set init " + dir + "enabled Y"), at("swapon /dev/vda2"));
  EXPECT_LT(at("swapon /dev/vda2"), at("meminfo sys interval=1000000000 zswap=1 &"));
  // The simulator's own page contents for memhog: class 1, its UniqueContent stream.
  const UniqueContent u(5, 0, Memhog::content_stream(0), ContentClass::kHeader);
  EXPECT_NE(sh.find(fmt::format(" content=1 content_base={}", u.base())), std::string::npos) << sh;
  const auto noted = [&](const std::string& text) {
    return std::any_of(plan.notes.begin(), plan.notes.end(),
                       [&](const std::string& n) { return n.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(noted("reclaim[0].compression_profile"));
  EXPECT_FALSE(noted("vm.workloads[0].content is not set"));
}

TEST_F(LabPlanTest, ZswapCompressorsAndDefaults) {
  EXPECT_STREQ(zswap_compressor_name(Compressor::kLzo1x1), "lzo");
  EXPECT_STREQ(zswap_compressor_name(Compressor::kLz4), "lz4");
  EXPECT_STREQ(zswap_compressor_name(Compressor::kZstd), "zstd");
  // 6.1's defaults: lzo over zbud, 20%, 90%, same-filled pages on.
  const LabPlan plan = make_lab_plan(load(std::string(kZswapVm) + "reclaim: [{impl: zswap}]\n"));
  const auto has = [&](const std::string& name, const std::string& value) {
    const auto& st = plan.vms[0].settings;
    return std::find(st.begin(), st.end(),
                     std::make_pair("/sys/module/zswap/parameters/" + name, value)) != st.end();
  };
  EXPECT_TRUE(has("compressor", "lzo"));
  EXPECT_TRUE(has("zpool", "zbud"));
  EXPECT_TRUE(has("max_pool_percent", "20"));
  EXPECT_TRUE(has("accept_threshold_percent", "90"));
  EXPECT_TRUE(has("same_filled_pages_enabled", "Y"));
  EXPECT_TRUE(has("enabled", "Y"));
  const std::vector<std::string> modules = {"zswap", "zbud", "lzo"};
  EXPECT_EQ(plan.guest_modules, modules);
  const LabPlan zstd =
      make_lab_plan(load(std::string(kZswapVm) + "reclaim: [{impl: zswap, compressor: zstd}]\n"));
  EXPECT_EQ(zstd.guest_modules.back(), "zstd");
}

TEST_F(LabPlanTest, ZswapWithTheCloudKernelIsRefusedNamingTheLine) {
  const std::string e =
      error_of(std::string(kZswapVm) + "reclaim: [{impl: zswap}]\nlab:\n  kernel_flavour: cloud\n");
  EXPECT_NE(e.find("s.yaml:13: lab.kernel_flavour: lab backend: reclaim[0] is zswap, and "
                   "Debian's cloud kernel is built without it"),
            std::string::npos)
      << e;
  // A kernel named by its file is checked against the image it builds instead.
  const LabPlan named = make_lab_plan(load(std::string(kZswapVm) + R"(reclaim: [{impl: zswap}]
lab: {kernel_flavour: cloud, kernel: /boot/vmlinuz-x}
)"));
  EXPECT_EQ(named.kernel_flavour, KernelFlavour::kCloud);
}

TEST_F(LabPlanTest, ZswapWithoutSwapIsRefused) {
  const std::string e = error_of(R"(vm:
  memory: 512MiB
  workloads:
    - {type: memhog, size: 100MiB}
reclaim:
  - impl: zswap
)");
  EXPECT_NE(e.find("s.yaml:8: reclaim[0].impl: lab backend: zswap keeps pages on their way to a "
                   "swap device, and the guest has none"),
            std::string::npos)
      << e;
}

TEST_F(LabPlanTest, TwoZswapsAreRefused) {
  const std::string e =
      error_of(std::string(kZswapVm) + "reclaim:\n  - impl: zswap\n  - impl: zswap\n");
  EXPECT_NE(e.find("reclaim[1].impl: lab backend: a guest kernel has one zswap, and reclaim[0] "
                   "is zswap already"),
            std::string::npos)
      << e;
}

TEST_F(LabPlanTest, KernelFlavourFollowsTheScenario) {
  EXPECT_EQ(make_lab_plan(load(std::string(kVm) + "experiment: {type: fixed, duration: 10s}\n"))
                .kernel_flavour,
            KernelFlavour::kCloud);
  EXPECT_EQ(make_lab_plan(load(std::string(kVm) + "experiment: {type: fixed, duration: 10s}\n"
                                                  "lab: {kernel_flavour: generic}\n"))
                .kernel_flavour,
            KernelFlavour::kGeneric);
  const LabPlan plan =
      make_lab_plan(load(std::string(kVm) + "experiment: {type: fixed, duration: 10s}\n"));
  EXPECT_TRUE(plan.guest_modules.empty());
  EXPECT_EQ(file_of(plan.vms[0], "etc/memvirt/vm.sh").find("debugfs"), std::string::npos);
  EXPECT_EQ(file_of(plan.vms[0], "etc/memvirt/vm.sh").find("zswap=1"), std::string::npos);
  EXPECT_EQ(file_of(plan.vms[0], "etc/memvirt/vm.sh").find("content="), std::string::npos);
  try {
    load(std::string(kVm) + "lab: {kernel_flavour: rt}\n");
    FAIL() << "an unknown flavour must be an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("lab.kernel_flavour"), std::string::npos) << e.what();
  }
}

TEST_F(LabPlanTest, MemhogWithoutContentIsNotedForZswap) {
  const LabPlan plan = make_lab_plan(load(R"(vm:
  memory: 512MiB
  disk: 1GiB
  kernel: {swap: 512MiB}
  workloads:
    - {type: memhog, size: 600MiB}
reclaim: [{impl: zswap}]
)"));
  const bool noted = std::any_of(plan.notes.begin(), plan.notes.end(), [](const std::string& n) {
    return n.find("vm.workloads[0].content is not set") != std::string::npos;
  });
  EXPECT_TRUE(noted);
}

TEST(LabZswapImage, AMissingModuleIsNamed) {
  LabPlan plan;
  plan.zswap_entry = 0;
  plan.guest_modules = {"zswap", "zbud", "lz4"};
  GuestImage cloud;
  cloud.kernel_release = "6.1.0-57-cloud-amd64";
  cloud.optional_modules["lz4"] = {"lz4_compress", "lz4"};
  const std::string m = missing_guest_module(plan, cloud);
  EXPECT_NE(m.find("the guest kernel 6.1.0-57-cloud-amd64 has no zswap"), std::string::npos) << m;
  EXPECT_NE(m.find("lab.kernel_flavour: generic"), std::string::npos) << m;
  GuestImage generic;
  generic.kernel_release = "6.1.0-57-amd64";
  generic.builtin_modules = {"zswap", "zbud", "lzo"};
  EXPECT_NE(missing_guest_module(plan, generic).find("has no lz4"), std::string::npos);
  generic.optional_modules["lz4"] = {"lz4_compress", "lz4"};
  EXPECT_EQ(missing_guest_module(plan, generic), "");
}

TEST(LabDiskCommand, QemuGetsAThrottledVirtioDisk) {
  QemuLaunch l;
  l.qemu = "/usr/bin/qemu-system-x86_64";
  l.accel = "tcg";
  l.name = "vm0";
  l.memory = Bytes{1ULL << 30};
  l.disk = "/out/a,b/disk.img";
  l.disk_bps = 100'000'000;
  const std::vector<std::string> a = qemu_argv(l);
  const auto drive = std::find(a.begin(), a.end(), "-drive");
  ASSERT_NE(drive, a.end());
  EXPECT_EQ(*(drive + 1),
            "file=/out/a,,b/disk.img,if=none,id=disk0,format=raw,cache=none,"
            "throttling.bps-total=100000000");
  EXPECT_NE(std::find(a.begin(), a.end(), "virtio-blk-pci,drive=disk0"), a.end());
  l.disk.clear();
  const std::vector<std::string> none = qemu_argv(l);
  EXPECT_EQ(std::find(none.begin(), none.end(), "-drive"), none.end());
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

TEST(LabScenarios, ShippedLabScenariosPlan) {
  int found = 0;
  for (const auto& e : std::filesystem::directory_iterator(
           std::filesystem::path(MEMVIRT_SOURCE_DIR) / "scenarios")) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("lab-") || e.path().extension() != ".yaml") continue;
    ++found;
    const LabPlan plan = make_lab_plan(load_scenario(e.path().string(), {}, {lab_extension()}));
    EXPECT_FALSE(plan.vms.empty()) << name;
  }
  EXPECT_GE(found, 5);
}

// The `lab:` block of docs/scenarios.md, with the defaults it documents.
TEST(LabScenarios, DocumentedLabSectionLoadsWithItsDefaults) {
  const std::string doc = testing::whole_file(testing::source_path("docs/scenarios.md"));
  const auto start = doc.find("```yaml\nlab:\n");
  ASSERT_NE(start, std::string::npos) << "docs/scenarios.md lost its lab: block";
  const auto end = doc.find("```", start + 8);
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("memvirt-doc-lab-{}", getpid());
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "doc.yaml").string();
  std::ofstream(file) << "host: {memory: 4GiB}\nvm: {memory: 1GiB}\n"
                      << doc.substr(start + 8, end - start - 8);
  const Scenario s = load_scenario(file, {}, {lab_extension()});
  const Scenario defaults = [&] {
    std::ofstream(file) << "host: {memory: 4GiB}\nvm: {memory: 1GiB}\n";
    return load_scenario(file, {}, {lab_extension()});
  }();
  std::filesystem::remove_all(dir);
  EXPECT_EQ(lab_config(s).qemu, lab_config(defaults).qemu);
  EXPECT_EQ(lab_config(s).accel, lab_config(defaults).accel);
  EXPECT_EQ(lab_config(s).image, lab_config(defaults).image);
  EXPECT_EQ(lab_config(s).kernel_flavour, lab_config(defaults).kernel_flavour);
  EXPECT_EQ(lab_config(s).guest_thp, lab_config(defaults).guest_thp);
  EXPECT_EQ(lab_config(s).boot_timeout, lab_config(defaults).boot_timeout);
  EXPECT_EQ(lab_config(s).silence_timeout, lab_config(defaults).silence_timeout);
  EXPECT_EQ(lab_config(s).qmp_timeout, lab_config(defaults).qmp_timeout);
  EXPECT_EQ(lab_config(s).guest_sample_interval, lab_config(defaults).guest_sample_interval);
}

}  // namespace
}  // namespace memvirt
