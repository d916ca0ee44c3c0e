// Host-side readers and KSM control against fixture files, markers, and the comparison of
// two output folders.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "lab/compare.hpp"
#include "lab/host_probe.hpp"
#include "lab/ksm_host.hpp"
#include "lab/lab_error.hpp"
#include "lab/markers.hpp"
#include "real/proc_stats.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

TEST(HostProbe, FindsTheGuestRamMappingInSmaps) {
  const std::string smaps =
      "55d0c0000000-55d0c0a00000 r-xp 00000000 08:01 1234 /usr/bin/qemu-system-x86_64\n"
      "Size:              10240 kB\n"
      "Rss:                5000 kB\n"
      "7f0000000000-7f0040000000 rw-p 00000000 00:00 0 \n"
      "Size:            1048576 kB\n"
      "Rss:              614400 kB\n"
      "Pss:              600000 kB\n"
      "Private_Clean:         0 kB\n"
      "Private_Dirty:    590000 kB\n"
      "AnonHugePages:    204800 kB\n"
      "VmFlags: rd wr mr mw me ac sd mg\n"
      "7f1000000000-7f1080000000 rw-p 00000000 00:00 0 \n"
      "Size:            2097152 kB\n"
      "Rss:                   4 kB\n"
      "7f2000000000-7f2000100000 rw-p 00000000 00:00 0 \n"
      "Size:               1024 kB\n"
      "Rss:                1024 kB\n";
  const auto ram = find_guest_ram(smaps, Bytes{1ULL << 30});
  ASSERT_TRUE(ram.has_value());
  EXPECT_EQ(ram->size, 1ULL << 30);  // the smallest mapping that can hold the guest
  EXPECT_EQ(ram->rss, 614400ULL * 1024);
  EXPECT_EQ(ram->pss, 600000ULL * 1024);
  EXPECT_EQ(ram->private_bytes, 590000ULL * 1024);
  EXPECT_EQ(ram->anon_huge, 204800ULL * 1024);
  EXPECT_FALSE(find_guest_ram(smaps, Bytes{4ULL << 30}).has_value());
}

TEST(HostProbe, ReadsThisProcess) {
  EXPECT_GT(process_rss_bytes(getpid()), 0u);
  volatile double x = 0;
  for (int i = 0; i < 20'000'000; ++i) x = x + 1;
  EXPECT_GT(proc_process_cpu_seconds(getpid()).value_or(0), 0.0);
  const ProcMeminfo m = proc_meminfo();
  EXPECT_GT(m.total.value(), 0U);
  ASSERT_TRUE(m.available.has_value());
  EXPECT_LE(*m.available, m.total);
}

TEST(KsmHost, AppliesAndRestoresInOrder) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("memvirt-ksm-test-{}", getpid());
  fs::create_directories(dir);
  for (const auto& [name, value] :
       {std::pair{"run", "0"}, {"pages_to_scan", "100"}, {"sleep_millisecs", "20"}}) {
    std::ofstream(dir / name) << value << "\n";
  }
  {
    KsmHost ksm(dir.string(), dir.string() + "-state");
    ksm.apply({{"pages_to_scan", "5000"}, {"sleep_millisecs", "10"}});
    EXPECT_EQ(read_all(dir / "pages_to_scan"), "5000");
    EXPECT_EQ(read_all(dir / "sleep_millisecs"), "10");
    EXPECT_EQ(read_all(dir / "run"), "1");
  }  // the destructor restores
  EXPECT_EQ(read_all(dir / "pages_to_scan"), "100");
  EXPECT_EQ(read_all(dir / "sleep_millisecs"), "20");
  EXPECT_EQ(read_all(dir / "run"), "0");

  // A setting the kernel lacks: error naming it, and what was changed is put back.
  {
    KsmHost ksm(dir.string(), dir.string() + "-state");
    try {
      ksm.apply({{"pages_to_scan", "7"}, {"no_such_knob", "1"}});
      FAIL() << "expected an error";
    } catch (const LabError& e) {
      EXPECT_NE(std::string(e.what()).find("no_such_knob"), std::string::npos) << e.what();
    }
    EXPECT_EQ(read_all(dir / "pages_to_scan"), "100");
  }
  fs::remove_all(dir);
  fs::remove_all(dir.string() + "-state");
}

TEST(Markers, ParsesFieldsAndValuesWithSpaces) {
  const auto m = parse_marker("@@memvirt 12.500000000 w0 touched run=1 bytes=4096");
  ASSERT_TRUE(m.has_value());
  EXPECT_DOUBLE_EQ(m->guest_s, 12.5);
  EXPECT_EQ(m->tag, "w0");
  EXPECT_EQ(m->event, "touched");
  EXPECT_EQ(m->field("run"), "1");
  EXPECT_EQ(m->field("bytes"), "4096");
  EXPECT_EQ(m->field("absent"), "");
  // A kernel message cut into the line before the marker; a carriage return after it.
  const auto e = parse_marker("[  3.1] virtio@@memvirt 3.0 init error what=insmod virtio failed\r");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->event, "error");
  EXPECT_EQ(e->field("what"), "insmod virtio failed");
  EXPECT_FALSE(parse_marker("[    1.2] Run /init as init process").has_value());
  EXPECT_FALSE(parse_marker("@@memvirt notatime w0 start").has_value());
  EXPECT_FALSE(parse_marker("@@memvirt 1.0 w0").has_value());
}

class CompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / fmt::format("memvirt-compare-test-{}", getpid());
    fs::create_directories(root_ / "sim");
    fs::create_directories(root_ / "lab");
    std::ofstream(root_ / "sim" / "timeseries.csv")
        << "time_s,host_used_gib,vms_alive\n0,0,1\n10,1,1\n20,1,1\n";
    std::ofstream(root_ / "lab" / "timeseries.csv")
        << "time_s,host_used_gib,guest_touched_gib\n0,0.1,nan\n5,0.6,nan\n10,1.2,nan\n"
           "20,1.2,nan\n";
    std::ofstream(root_ / "lab" / "markers.csv") << "time_s,vm,guest_s,tag,event,fields\n"
                                                    "2.000,0,1.0,sys,meminfo,\"free=1 total=2\"\n"
                                                    "5.000,0,4.0,w0,start,\"run=0 bytes=600\"\n"
                                                    "10.000,0,9.0,w0,touched,\"run=0\"\n";
    std::ofstream(root_ / "lab" / "lab.json") << "{}\n";
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(CompareTest, ErrorsAtMarkersAndOverTime) {
  const Comparison c = compare_outputs((root_ / "sim").string(), (root_ / "lab").string());
  EXPECT_EQ(c.a_label, "sim");
  EXPECT_EQ(c.b_label, "lab");
  ASSERT_EQ(c.at_markers.size(), 2u);  // meminfo samples are not markers of interest
  EXPECT_EQ(c.at_markers[0].label, "vm0 w0 start run=0");
  EXPECT_DOUBLE_EQ(c.at_markers[0].a, 0.5);  // sim between its samples at 0 s and 10 s
  EXPECT_DOUBLE_EQ(c.at_markers[0].b, 0.6);
  EXPECT_DOUBLE_EQ(c.at_markers[1].b - c.at_markers[1].a, 0.2);
  // |lab - sim| at lab's samples 0, 5, 10, 20 s: 0.1, 0.1, 0.2, 0.2.
  EXPECT_NEAR(c.mean_abs_error, 0.15, 1e-12);
  EXPECT_NEAR(c.max_abs_error, 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(c.max_error_at_s, 10);
  std::ostringstream out;
  print_comparison(out, c);
  EXPECT_NE(out.str().find("w0 touched"), std::string::npos) << out.str();
}

TEST_F(CompareTest, PlotsWithGnuplot) {
  const Comparison c = compare_outputs((root_ / "sim").string(), (root_ / "lab").string());
  const std::string png = (root_ / "lab" / "compare.png").string();
  plot_comparison(c, png);
  ASSERT_TRUE(fs::exists(png));
  EXPECT_GT(fs::file_size(png), 1000u);
  std::ifstream in(png, std::ios::binary);
  char sig[4] = {};
  in.read(sig, 4);
  EXPECT_EQ(std::string(sig + 1, 3), "PNG");
}

TEST_F(CompareTest, MissingColumnOrFileIsNamed) {
  EXPECT_THROW(compare_outputs((root_ / "sim").string(), (root_ / "nowhere").string()), LabError);
  try {
    compare_outputs((root_ / "sim").string(), (root_ / "lab").string(), "qemu_rss_gib");
    FAIL() << "expected an error";
  } catch (const LabError& e) {
    EXPECT_NE(std::string(e.what()).find("no 'qemu_rss_gib' column"), std::string::npos)
        << e.what();
  }
  EXPECT_DOUBLE_EQ(value_at({{0, 1}, {2, 3}}, 1), 2);
  EXPECT_DOUBLE_EQ(value_at({{0, 1}, {2, 3}}, 5), 3);
  EXPECT_TRUE(std::isnan(value_at({}, 1)));
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

TEST(KsmHost, LeavesAnotherProgramsSettingAlone) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("memvirt-ksm-test2-{}", getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "run") << "0\n";
  std::ofstream(dir / "pages_to_scan") << "100\n";
  std::vector<std::string> problems;
  {
    KsmHost ksm(dir.string(), dir.string() + "-state");
    ksm.apply({{"pages_to_scan", "5000"}});
    std::ofstream(dir / "pages_to_scan") << "42\n";  // another program, during the run
    problems = ksm.restore();
  }
  EXPECT_EQ(read_all(dir / "pages_to_scan"), "42");
  EXPECT_EQ(read_all(dir / "run"), "0");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("pages_to_scan was changed by another process"), std::string::npos)
      << problems[0];
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(dir.string() + "-state");
}

}  // namespace
}  // namespace memvirt
