// The /proc readers a controller of real guests uses: meminfo, memory pressure and a
// process's VmRSS, from text and from a fake /proc; malformed files are errors naming them.
#include "real/proc_stats.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "test_util.hpp"

namespace memvirt {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

constexpr const char* kMeminfo =
    "MemTotal:       16318712 kB\n"
    "MemFree:         9012344 kB\n"
    "MemAvailable:   12000000 kB\n"
    "Buffers:          204800 kB\n"
    "Cached:          2097152 kB\n"
    "SwapCached:            0 kB\n";

TEST(ProcStats, MeminfoFields) {
  const ProcMeminfo m = parse_meminfo(kMeminfo, "meminfo");
  EXPECT_EQ(m.total, Bytes{16318712ULL << 10});
  EXPECT_EQ(m.free, Bytes{9012344ULL << 10});
  EXPECT_EQ(m.buffers, Bytes{204800ULL << 10});
  EXPECT_EQ(m.cached, Bytes{2097152ULL << 10});  // not SwapCached, which also ends in Cached:
  EXPECT_EQ(m.available, Bytes{12000000ULL << 10});
  // A kernel before 3.14 has no MemAvailable line.
  EXPECT_FALSE(parse_meminfo("MemTotal: 10 kB\nMemFree: 2 kB\nBuffers: 1 kB\nCached: 1 kB\n", "m")
                   .available.has_value());
}

TEST(ProcStats, MeminfoErrorsNameTheFileAndField) {
  EXPECT_EQ(
      error_of([] { parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nCached: 1 kB\n", "m"); }),
      "m: no Buffers line");
  EXPECT_EQ(error_of([] {
              parse_meminfo("MemTotal: lots kB\nMemFree: 1 kB\nBuffers: 1 kB\nCached: 1 kB\n", "m");
            }),
            "m: MemTotal is not a number of kB: 'MemTotal: lots kB'");
  EXPECT_EQ(error_of([] {
              parse_meminfo("MemTotal: 10 kB\nMemFree: 20 kB\nBuffers: 1 kB\nCached: 1 kB\n", "m");
            }),
            "m: MemFree is more than MemTotal");
  EXPECT_EQ(error_of([] {
              parse_meminfo("MemTotal: 10 MB\nMemFree: 2 kB\nBuffers: 1 kB\nCached: 1 kB\n", "m");
            }),
            "m: MemTotal is not a number of kB: 'MemTotal: 10 MB'");
  const std::string four = "MemTotal: 10 kB\nMemFree: 2 kB\nBuffers: 1 kB\nCached: 1 kB\n";
  EXPECT_EQ(error_of([&] { parse_meminfo(four + "MemAvailable: x kB\n", "m"); }),
            "m: MemAvailable is not a number of kB: 'MemAvailable: x kB'");
  EXPECT_EQ(error_of([&] { parse_meminfo(four + "MemAvailable: 11 kB\n", "m"); }),
            "m: MemAvailable is more than MemTotal");
}

TEST(ProcStats, PressureSomeTotal) {
  EXPECT_EQ(parse_pressure_some_total("some avg10=1.50 avg60=0.20 avg300=0.00 total=123456\n"
                                      "full avg10=0.00 avg60=0.00 avg300=0.00 total=99\n",
                                      "p"),
            Duration{123'456'000});
  EXPECT_EQ(error_of([] { parse_pressure_some_total("full avg10=0 total=1\n", "p"); }),
            "p: no 'some' line");
  EXPECT_EQ(error_of([] { parse_pressure_some_total("some avg10=0.00 total=x\n", "p"); }),
            "p: 'some' total is not a number of microseconds: 'some avg10=0.00 total=x'");
  EXPECT_EQ(error_of([] { parse_pressure_some_total("some avg10=0.00\n", "p"); }),
            "p: 'some' line has no total");
}

TEST(ProcStats, VmRss) {
  EXPECT_EQ(parse_status_vm_rss("Name:\tqemu\nVmRSS:\t  524288 kB\n", "s"), Bytes{512ULL << 20});
  EXPECT_FALSE(parse_status_vm_rss("Name:\tkthreadd\nThreads:\t1\n", "s").has_value());
  EXPECT_EQ(error_of([] { parse_status_vm_rss("VmRSS:\tmany\n", "s"); }),
            "s: VmRSS is not a number of kB: 'VmRSS:\tmany'");
}

TEST(ProcStats, FromAProcFolder) {
  const auto dir = testing::temp_dir() / "proc";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "4242");
  std::ofstream(dir / "meminfo") << kMeminfo;
  std::ofstream(dir / "4242" / "status") << "VmRSS:\t 1024 kB\n";
  EXPECT_EQ(proc_meminfo(dir).total, Bytes{16318712ULL << 10});
  EXPECT_FALSE(proc_memory_pressure(dir).has_value());  // a kernel without PSI
  std::filesystem::create_directories(dir / "pressure");
  std::ofstream(dir / "pressure" / "memory") << "some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n";
  EXPECT_EQ(proc_memory_pressure(dir), Duration{7000});
  EXPECT_EQ(proc_vm_rss(4242, dir), Bytes{1ULL << 20});
  EXPECT_FALSE(proc_vm_rss(4243, dir).has_value());  // no such process
  EXPECT_NE(error_of([&] { proc_meminfo(dir / "nowhere"); }).find("nowhere/meminfo"),
            std::string::npos);
  // This process, from the real /proc.
  const std::optional<Bytes> own = proc_vm_rss(getpid());
  ASSERT_TRUE(own.has_value());
  EXPECT_GT(own->value(), 0U);
}

}  // namespace
}  // namespace memvirt
