#include "workload/trace.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "scenario/experiment.hpp"
#include "scenario/scenario.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

using testing::write_file;

// A one-VM scenario in `dir` running `workload` (a YAML flow map).
std::string one_vm_scenario(const fs::path& dir, const std::string& workload,
                            const std::string& experiment = "") {
  return write_file(dir / "s.yaml",
                    testing::with_source_profile("calibration: profiles/default.yaml\n"
                                                 "host: {memory: 2GiB}\n"
                                                 "vm:\n  memory: 1GiB\n  workloads:\n    - " +
                                                 workload + "\n" + experiment));
}

TEST(Trace, ParsesUnitsCommentsAndHeader) {
  const fs::path d = testing::temp_dir();
  const Trace t = load_trace(
      write_file(d / "t.csv", "# usage\ntime,in_use\n0s,100MiB\n30, 4096 # bare\n1min,1GiB\n"));
  ASSERT_EQ(t.points.size(), 3U);
  EXPECT_EQ(t.points[1].time.ns(), 30'000'000'000);
  EXPECT_EQ(t.points[1].in_use.value(), 4096U);
  EXPECT_EQ(t.points[2].in_use.value(), 1ULL << 30);
}

TEST(Trace, BadRowsNameFileLineAndColumn) {
  const fs::path d = testing::temp_dir();
  struct Case {
    const char* text;
    const char* expect;
  };
  for (const Case& c : {Case{"0s,1MiB\n5s,lots\n", "t.csv:2: in_use: 'lots'"},
                        Case{"0s,1MiB\nsoon,1MiB\n", "t.csv:2: time: 'soon'"},
                        Case{"0s,1MiB\n0s,2MiB\n", "t.csv:2: time: '0s' does not come after"},
                        Case{"0s,1MiB,3\n", "t.csv:1: expected two columns"},
                        Case{"0s,-1MiB\n", "t.csv:1: in_use: '-1MiB' is negative"},
                        Case{"# nothing\n", "t.csv: trace has no rows"}}) {
    const std::string f = write_file(d / "t.csv", c.text);
    try {
      load_trace(f);
      FAIL() << "accepted: " << c.text;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
  }
  try {
    load_trace((d / "missing.csv").string());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.csv: cannot open trace file"), std::string::npos);
  }
}

TEST(Trace, ReplayFollowsTheTraceInTheGuest) {
  const fs::path d = testing::temp_dir();
  write_file(d / "usage.csv", "0s,100MiB\n60s,300MiB\n120s,50MiB\n180s,0\n");
  const std::string scenario = one_vm_scenario(
      d, "{type: trace, file: usage.csv}",
      "experiment: {type: fixed, vms: 1, duration: 200s, sample_interval: 10s, checks: full}\n");
  const Scenario s = load_scenario(scenario);
  const ExperimentResult r = run_experiment(s);
  const auto& cols = r.run.series.columns();
  const auto col = static_cast<std::size_t>(
      std::find(cols.begin(), cols.end(), "guest_in_use_gib") - cols.begin());
  auto in_use_mib_at = [&](double t) {
    for (const auto& row : r.run.series.rows()) {
      if (row[0] == t) return row[col] * 1024;
    }
    ADD_FAILURE() << "no sample at " << t;
    return 0.0;
  };
  // Guest memory in use is the program's plus a few per-CPU list pages.
  EXPECT_NEAR(in_use_mib_at(50), 100, 1);
  EXPECT_NEAR(in_use_mib_at(110), 300, 1);
  EXPECT_NEAR(in_use_mib_at(170), 50, 1);
  EXPECT_NEAR(in_use_mib_at(190), 0, 1);
  // Without reclaim the host keeps the peak.
  EXPECT_NEAR(r.run.host_max_gib * 1024, 300, 2);
}

TEST(Trace, ScenarioWithBadTraceFailsAtLoad) {
  const fs::path d = testing::temp_dir();
  write_file(d / "bad.csv", "0s,1MiB\n1s,x\n");
  const std::string scenario = one_vm_scenario(d, "{type: trace, file: bad.csv}");
  try {
    load_scenario(scenario);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:2: in_use: 'x'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace memvirt
