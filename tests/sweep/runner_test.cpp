// Running sweeps: outputs, resuming by config.yaml's hash, results equal to `run`'s
// replicates, and (SweepThreads, also under ThreadSanitizer) the same bytes whatever -j and
// admission by memory.
#include "sweep/runner.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "report/report.hpp"
#include "scenario/experiment.hpp"
#include "sweep/sweep.hpp"
#include "sweep_util.hpp"

namespace memvirt::sweep {
namespace {

namespace fs = std::filesystem;
using memvirt::testing::temp_dir;
using memvirt::testing::write_file;
using nlohmann::json;
using testing::whole_file;
using testing::write_sweep;

const char* kSweep = R"yaml(name: tiny-sweep
scenario: tiny.yaml
axes:
  - key: vm.boot.footprint
    values: [16MiB, 32MiB]
  - key: experiment.vms
    name: vms
    values: [1, 2]
seeds: 3
summary: {aggregate: trimmed_mean}
results:
  - {key: host_memory_gib.avg, name: host_avg}
  - {key: run.vms_launched, name: launched}
  - {key: run.workload_ops_per_s.0, name: ops}
tables:
  - file: t.md
    columns:
      - {heading: footprint, cell: "{footprint}"}
    across: vms
    heading: "{vms} VMs"
    cell: "{launched:.0f} ({launched_change_pct:+.0f} %)"
plots:
  - {file: host.png, x: footprint, y: host_avg, series: vms}
  - {file: over-time.png, column: host_used_gib}
)yaml";

SweepResult sweep_into(const std::string& file, const fs::path& out, unsigned jobs = 1,
                       std::uint64_t budget = 0) {
  SweepOptions opt;
  opt.out_dir = out.string();
  opt.jobs = jobs;
  opt.memory_budget = budget;
  return run_sweep(file, opt);
}

TEST(SweepRun, WritesEveryRunsFilesAndTheTables) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, kSweep);
  const SweepResult r = sweep_into(file, dir / "out");
  EXPECT_EQ(r.pool.ran.size(), 12U);
  EXPECT_TRUE(r.pool.failed.empty());
  EXPECT_TRUE(r.tables.problems.empty());
  for (const PlannedRun& run : r.plan.runs) {
    for (const char* f : {"config.yaml", "results.json", "timeseries.csv"}) {
      EXPECT_TRUE(fs::exists(dir / "out" / run.folder / f)) << run.folder << "/" << f;
    }
    EXPECT_EQ(whole_file(dir / "out" / run.folder / "config.yaml"), run.config_text);
  }
  const std::string csv = whole_file(dir / "out" / "sweep.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "point,footprint,vms,replicate,seed,config_hash,host_avg,launched,ops");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 13);
  const std::string summary = whole_file(dir / "out" / "summary.csv");
  EXPECT_EQ(std::count(summary.begin(), summary.end(), '\n'), 5);
  EXPECT_NE(summary.find("host_avg_trimmed_mean"), std::string::npos);
  EXPECT_EQ(
      whole_file(dir / "out" / "t.md"),
      "| footprint | 1 VMs | 2 VMs |\n| --- | --- | --- |\n| 16MiB | 1 (+0 %) | 2 (+100 %) |\n"
      "| 32MiB | 1 (+0 %) | 2 (+100 %) |\n");
  EXPECT_TRUE(fs::exists(dir / "out" / "host.gp"));
  EXPECT_TRUE(fs::exists(dir / "out" / "host.dat"));
  // The time-series plot names each point's first run.
  const std::string gp = whole_file(dir / "out" / "over-time.gp");
  EXPECT_NE(gp.find("'footprint=32MiB,vms=2/seed-0/timeseries.csv'"), std::string::npos) << gp;
  EXPECT_EQ(gp.find("seed-1"), std::string::npos);
}

TEST(SweepRun, EachSeedsRunEqualsTheReplicateOfRunWithReplicates) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, kSweep);
  const SweepResult r = sweep_into(file, dir / "out");
  // Point footprint=32MiB,vms=2 as `memvirt run tiny.yaml -p ... -p experiment.replicates=3`.
  const Scenario s =
      load_scenario((dir / "tiny.yaml").string(),
                    {"vm.boot.footprint=32MiB", "experiment.vms=2", "experiment.replicates=3",
                     "experiment.aggregate=trimmed_mean"});
  const json replicated = results_json(s, run_experiment(s));
  for (unsigned i = 0; i < 3; ++i) {
    const json one = json::parse(
        whole_file(dir / "out" / fmt::format("footprint=32MiB,vms=2/seed-{}", i) / "results.json"));
    EXPECT_EQ(one["seed"], replicated["replicates"][i]["seed"]);
    EXPECT_EQ(one["host_memory_gib"], replicated["replicates"][i]["host_memory_gib"]);
    EXPECT_EQ(one["run"]["events"], replicated["replicates"][i]["run"]["events"]);
  }
  // summary.csv's trimmed mean is the replicated run's aggregate.
  const std::string summary = whole_file(dir / "out" / "summary.csv");
  const double trimmed = replicated["host_memory_gib"]["avg"].get<double>();
  EXPECT_NE(summary.find(fmt::format(",{},", trimmed)), std::string::npos) << summary << trimmed;
}

TEST(SweepRun, ResumeSkipsFinishedRunsAndRerunsChangedAndPartialOnes) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, kSweep);
  const fs::path out = dir / "out";
  const SweepResult first = sweep_into(file, out);
  const std::string csv = whole_file(out / "sweep.csv");

  const SweepResult again = sweep_into(file, out);
  EXPECT_EQ(again.pool.resumed.size(), 12U);
  EXPECT_TRUE(again.pool.ran.empty());
  EXPECT_EQ(whole_file(out / "sweep.csv"), csv);

  // A config.yaml that differs (another configuration in that folder), a run without its
  // results (an older, interrupted writer) and a left-over temporary folder.
  const PlannedRun& changed = first.plan.runs[1];
  const PlannedRun& partial = first.plan.runs[7];
  write_file(out / changed.folder / "config.yaml", changed.config_text + "# edited\n");
  fs::remove(out / partial.folder / "results.json");
  fs::create_directories(out / "footprint=16MiB,vms=1" / ".seed-2.partial");
  const SweepResult third = sweep_into(file, out);
  EXPECT_EQ(third.pool.ran, (std::vector<std::size_t>{1, 7}));
  EXPECT_EQ(third.pool.resumed.size(), 10U);
  EXPECT_EQ(whole_file(out / changed.folder / "config.yaml"), changed.config_text);
  EXPECT_EQ(whole_file(out / "sweep.csv"), csv);

  // A point whose configuration the sweep file now changes runs again; the others do not.
  std::string edited = kSweep;
  edited.replace(edited.find("[16MiB, 32MiB]"), 14, "[16MiB, 48MiB]");
  write_file(file, edited);
  const SweepResult fourth = sweep_into(file, out);
  EXPECT_EQ(fourth.pool.ran.size(), 6U);
  EXPECT_EQ(fourth.pool.resumed.size(), 6U);
}

TEST(SweepRun, ARunIsDoneOnlyWithResultsBesideTheSameConfiguration) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, kSweep);
  const SweepPlan plan = plan_sweep(load_sweep(file));
  const PlannedRun& run = plan.runs[0];
  const fs::path d = dir / "run";
  fs::create_directories(d);
  EXPECT_FALSE(run_is_done(d.string(), run));
  write_file(d / "config.yaml", run.config_text);
  EXPECT_FALSE(run_is_done(d.string(), run));
  write_file(d / "results.json", "{\"vms\": ");  // cut short
  EXPECT_FALSE(run_is_done(d.string(), run));
  write_file(d / "results.json", "{\"vms\": 1}");
  EXPECT_TRUE(run_is_done(d.string(), run));
  write_file(d / "config.yaml", plan.runs[1].config_text);
  EXPECT_FALSE(run_is_done(d.string(), run));
}

TEST(SweepRun, AResultNoRunReportsIsAProblemAtItsLine) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
results:
  - host_memory_gib.avg
  - run.no_such_value
)");
  const SweepResult r = sweep_into(file, dir / "out");
  ASSERT_EQ(r.tables.problems.size(), 1U);
  EXPECT_EQ(r.tables.problems[0].place().line, 4);
  EXPECT_TRUE(fs::exists(dir / "out" / "default" / "results.json"));
}

TEST(SweepRun, TwoSweepsCannotWriteOneFolder) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, "scenario: tiny.yaml\n");
  const fs::path out = dir / "out";
  fs::create_directories(out);
  const int fd = ::open((out / ".sweep.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  // flock locks are per open file description: a second open in this process conflicts too.
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  EXPECT_THROW((void)sweep_into(file, out), InputError);
  ::close(fd);
  EXPECT_NO_THROW((void)sweep_into(file, out));
}

TEST(SweepRun, TheCommandExitsTwoNamingTheLineOfABadValue) {
  const char* bin = std::getenv("MEMVIRT_BIN");
  if (bin == nullptr) GTEST_SKIP() << "MEMVIRT_BIN not set (ctest sets it)";
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
axes:
  - key: vm.vcpus
    values: [1, many]
)");
  const std::string cmd = fmt::format("'{}' sweep -q '{}' -o '{}' 2>'{}'", bin, file,
                                      (dir / "out").string(), (dir / "err").string());
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(whole_file(dir / "err").find(file + ":4: vm.vcpus:"), std::string::npos)
      << whole_file(dir / "err");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

// The files of every run and the tables, by name relative to `out`.
std::map<std::string, std::string> outputs(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (!e.is_regular_file() || e.path().filename() == ".sweep.lock") continue;
    files[fs::relative(e.path(), out).string()] = whole_file(e.path());
  }
  return files;
}

TEST(SweepThreads, TwoJobsWriteTheSameBytesAsOne) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, kSweep);
  const SweepResult one = sweep_into(file, dir / "j1", 1);
  const SweepResult two = sweep_into(file, dir / "j2", 2);
  EXPECT_EQ(one.pool.peak_running, 1U);
  EXPECT_EQ(two.pool.peak_running, 2U);
  const auto a = outputs(dir / "j1");
  const auto b = outputs(dir / "j2");
  EXPECT_EQ(a.size(), b.size());
  for (const auto& [name, bytes] : a) {
    if (name.ends_with(".png")) continue;  // gnuplot's, whatever its version writes
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(bytes, b.at(name)) << name;
  }
  // And again, the same: the sweep is deterministic.
  const SweepResult again = sweep_into(file, dir / "j2-again", 2);
  EXPECT_EQ(whole_file(dir / "j2" / "sweep.csv"), whole_file(dir / "j2-again" / "sweep.csv"));
}

TEST(SweepThreads, RunsWaitForMemoryRatherThanExceedTheBudget) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
axes:
  - key: experiment.vms
    values: [1, 2, 3, 4]
)");
  const SweepPlan plan = plan_sweep(load_sweep(file));
  // Room for the two smallest together (1 and 2 VMs), never for 3 and 4 together.
  const std::uint64_t budget = *plan.runs[0].memory.bytes + *plan.runs[1].memory.bytes;
  const SweepResult r = sweep_into(file, dir / "out", 4, budget);
  EXPECT_EQ(r.pool.ran.size(), 4U);
  EXPECT_LE(r.pool.peak_running, 2U);
  // A budget smaller than any run: one at a time, every run still done.
  const SweepResult tight = sweep_into(file, dir / "tight", 4, 1);
  EXPECT_EQ(tight.pool.peak_running, 1U);
  EXPECT_EQ(tight.pool.ran.size(), 4U);
  const SweepResult free = sweep_into(file, dir / "free", 4, 0);
  EXPECT_EQ(free.pool.peak_running, 4U);
}

}  // namespace
}  // namespace memvirt::sweep
