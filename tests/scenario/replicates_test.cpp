// Replicated experiments: experiment.replicates runs with derived seeds, the aggregate that
// results.json and the summary report, and results that do not depend on how many replicates
// run at a time.
#include "scenario/replicates.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <vector>

#include "report/report.hpp"
#include "scenario/scenario.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::temp_dir;
using testing::whole_file;
using testing::write_file;

// Six VMs, sampled every 30 s.
std::string drawn_text() {
  return testing::drawn_scenario_text("drawn", 6, "30s");
}

std::string drawn_scenario(const fs::path& dir, const std::string& experiment_lines = {}) {
  std::string text = drawn_text();
  text += experiment_lines;
  return write_file(dir / "drawn.yaml", text);
}

TEST(Aggregate, TrimmedMeanDropsTheHighestAndTheLowestAndAveragesTheRest) {
  // Sorted 1 2 4 7 10: the middle three average to 13/3; all five to 24/5.
  const std::vector<double> v{7, 1, 4, 10, 2};
  EXPECT_DOUBLE_EQ(aggregate(v, Aggregate::kTrimmedMean), 13.0 / 3.0);
  EXPECT_DOUBLE_EQ(aggregate(v, Aggregate::kMean), 24.0 / 5.0);
  // Only one of two equal highest values goes.
  EXPECT_DOUBLE_EQ(aggregate(std::vector<double>{9, 9, 1, 3}, Aggregate::kTrimmedMean), 6.0);
  // Values averaged that are all equal give that value exactly.
  EXPECT_EQ(aggregate(std::vector<double>{0.1, 0.1, 0.1}, Aggregate::kMean), 0.1);
  EXPECT_EQ(aggregate(std::vector<double>{5, 0.1, 0.1, 0.1, -5}, Aggregate::kTrimmedMean), 0.1);
  EXPECT_THROW((void)aggregate(std::vector<double>{1, 2}, Aggregate::kTrimmedMean),
               std::invalid_argument);
  EXPECT_THROW((void)aggregate(std::vector<double>{}, Aggregate::kMean), std::invalid_argument);
}

// Five replicates made by hand: every number of results.json is trimmed separately, so the
// run with the highest sectors read need not be the one with the highest completion time.
TEST(Aggregate, ResultsJsonTrimsEachNumberSeparatelyAndKeepsEveryReplicate) {
  const fs::path dir = temp_dir();
  const Scenario s = load_scenario(drawn_scenario(dir));
  ExperimentResult r;
  r.type = "fixed";
  r.vms = 4;
  r.aggregate = Aggregate::kTrimmedMean;
  const double completion[] = {3000, 2500, 4000, 2800, 3100};
  const std::uint64_t sectors[] = {100, 900, 300, 200, 400};
  const double host_avg[] = {1.0, 1.5, 1.25, 2.0, 0.5};
  for (unsigned i = 0; i < 5; ++i) {
    Replicate rep;
    rep.seed = 100 + i;
    rep.run.vms = 4;
    rep.run.completion_s = completion[i];
    rep.run.sectors_read = sectors[i];
    rep.run.host_avg_gib = host_avg[i];
    rep.run.tmem = RunResult::Tmem{10 * (i + 1), 20, 0, 7};
    rep.run.cpu.push_back({"guest_vcpus", 4, 10.0 + i, 100.0});
    r.replicates.push_back(rep);
  }
  r.run = r.replicates[0].run;
  const json j = results_json(s, r);
  // 2500 2800 | 3000 3100 | 4000; 100 | 200 300 400 | 900; 0.5 | 1.0 1.25 1.5 | 2.0
  EXPECT_DOUBLE_EQ(j["run"]["completion_s"].get<double>(), (2800 + 3000 + 3100) / 3.0);
  EXPECT_TRUE(j["run"]["sectors_read"].is_number_float());
  EXPECT_DOUBLE_EQ(j["run"]["sectors_read"].get<double>(), 300.0);
  EXPECT_DOUBLE_EQ(j["host_memory_gib"]["avg"].get<double>(), 1.25);
  EXPECT_DOUBLE_EQ(j["tmem"]["pages_max"].get<double>(), 30.0);
  EXPECT_DOUBLE_EQ(j["tmem"]["frontswap_pages_max"].get<double>(), 7.0);
  EXPECT_DOUBLE_EQ(j["cpu_percent"]["guest_vcpus"].get<double>(), 12.0);
  EXPECT_DOUBLE_EQ(j["cpu_accounts"]["guest_vcpus"]["threads"].get<double>(), 4.0);
  EXPECT_EQ(j["run"]["exceeded_budget"], false);
  // How it was computed, and every replicate's own values, as they were measured.
  EXPECT_EQ(j["aggregate"]["replicates"], 5);
  EXPECT_EQ(j["aggregate"]["method"], "trimmed_mean");
  EXPECT_EQ(j["aggregate"]["seeds"], json({100, 101, 102, 103, 104}));
  EXPECT_NE(j["aggregate"]["computed"].get<std::string>().find("middle 3 of 5"), std::string::npos);
  ASSERT_EQ(j["replicates"].size(), 5U);
  EXPECT_EQ(j["replicates"][1]["seed"], 101);
  EXPECT_EQ(j["replicates"][1]["run"]["sectors_read"], 900);
  EXPECT_TRUE(j["replicates"][1]["run"]["sectors_read"].is_number_integer());
  EXPECT_EQ(j["replicates"][2]["run"]["completion_s"], 4000.0);
  EXPECT_EQ(j["replicates"][3]["tmem"]["pages_max"], 40);
  EXPECT_FALSE(j["aggregate"].contains("not_in_every_replicate"));

  // A run that did not complete has no completion time: the aggregate has none either, and
  // says so.
  r.replicates[2].run.completion_s.reset();
  const json k = results_json(s, r);
  EXPECT_FALSE(k["run"].contains("completion_s"));
  EXPECT_EQ(k["aggregate"]["not_in_every_replicate"], json({"run.completion_s"}));
  EXPECT_FALSE(k["replicates"][2]["run"].contains("completion_s"));

  std::ostringstream summary;
  print_summary(summary, s, r);
  const std::string text = summary.str();
  EXPECT_NE(text.find("the mean of the middle 3 of 5 runs"), std::string::npos) << text;
  EXPECT_NE(text.find("300 read"), std::string::npos) << text;
  EXPECT_NE(text.find("run 1 (seed 101):"), std::string::npos) << text;
  EXPECT_NE(text.find("completed at 2500.0 s, 900 sectors read"), std::string::npos) << text;
  EXPECT_NE(text.find("not completed, 300 sectors read"), std::string::npos) << text;
  EXPECT_NE(text.find("in 4 of 5 runs only"), std::string::npos) << text;
}

TEST(Replicates, SeedsComeFromTheScenarioSeedAndTheFirstIsItsOwn) {
  EXPECT_EQ(replicate_seed(7, 0), 7U);
  std::set<std::uint64_t> seen;
  for (unsigned i = 0; i < 100; ++i) {
    const std::uint64_t seed = replicate_seed(7, i);
    EXPECT_EQ(seed, replicate_seed(7, i));
    EXPECT_LE(seed, static_cast<std::uint64_t>(INT64_MAX));  // a seed a scenario can give
    seen.insert(seed);
  }
  EXPECT_EQ(seen.size(), 100U);
  EXPECT_NE(replicate_seed(7, 1), replicate_seed(8, 1));
}

TEST(Replicates, OneReplicateIsTheRunAsBefore) {
  const fs::path dir = temp_dir();
  const Scenario plain = load_scenario(drawn_scenario(dir));
  EXPECT_EQ(plain.experiment.replicates, 1U);
  EXPECT_EQ(plain.experiment.aggregate, Aggregate::kMean);
  const Scenario one =
      load_scenario(drawn_scenario(dir), {"experiment.replicates=1", "experiment.aggregate=mean"});
  const ExperimentResult a = run_experiment(plain);
  const ExperimentResult b = run_experiment(one, nullptr, 4);
  EXPECT_TRUE(b.replicates.empty());
  const json ja = results_json(plain, a);
  EXPECT_EQ(ja.dump(), results_json(one, b).dump());
  EXPECT_FALSE(ja.contains("aggregate"));
  EXPECT_FALSE(ja.contains("replicates"));
  EXPECT_TRUE(ja["run"]["events"].is_number_integer());
}

// Replicate i is the run of the scenario with its seed: replicate 0 the scenario's own run
// (time series and stats too), the others what `-p seed=<their seed>` gives.
TEST(Replicates, EachReplicateIsTheRunWithItsSeed) {
  const fs::path dir = temp_dir();
  const std::string file = drawn_scenario(dir);
  const Scenario s = load_scenario(file, {"experiment.replicates=3"});
  const ExperimentResult r = run_experiment(s, nullptr, 2);
  ASSERT_EQ(r.replicates.size(), 3U);
  const json j = results_json(s, r);
  std::set<double> averages;
  for (unsigned i = 0; i < 3; ++i) {
    const std::uint64_t seed = replicate_seed(3, i);
    EXPECT_EQ(r.replicates[i].seed, seed);
    const Scenario alone = load_scenario(file, {fmt::format("seed={}", seed)});
    const ExperimentResult one = run_experiment(alone);
    json expected = results_json(alone, one);
    EXPECT_EQ(j["replicates"][i]["run"], expected["run"]) << i;
    EXPECT_EQ(j["replicates"][i]["host_memory_gib"], expected["host_memory_gib"]) << i;
    EXPECT_EQ(j["replicates"][i]["cpu_accounts"], expected["cpu_accounts"]) << i;
    averages.insert(one.run.host_avg_gib);
    if (i == 0) {
      EXPECT_EQ(j["stats"], expected["stats"]);
      std::ostringstream a, b;
      write_timeseries_csv(r.run.series, a);
      write_timeseries_csv(one.run.series, b);
      EXPECT_EQ(a.str(), b.str());
    }
  }
  EXPECT_EQ(averages.size(), 3U) << "the seeds should give different runs";
  std::vector<double> v(averages.begin(), averages.end());
  EXPECT_DOUBLE_EQ(j["host_memory_gib"]["avg"].get<double>(), (v[0] + v[1] + v[2]) / 3);
}

// Counts the progress calls of a replicated run, which come from several threads.
class CountingProgress final : public ExperimentProgress {
 public:
  void begin_trial(unsigned) override { ++begun; }
  void end_trial(const Trial&) override {}
  void update(double, double) override { ++updates; }
  void replicates(std::span<const ReplicateState> all) override {
    const std::size_t done = static_cast<std::size_t>(
        std::count_if(all.begin(), all.end(), [](const ReplicateState& st) { return st.done; }));
    EXPECT_GE(done, last_done);
    last_done = done;
    ++boards;
  }
  void replicate_done(std::size_t index, const Replicate& r) override {
    finished.push_back(index);
    seeds.insert(r.seed);
  }
  int begun = 0, updates = 0, boards = 0;
  std::size_t last_done = 0;
  std::vector<std::size_t> finished;
  std::set<std::uint64_t> seeds;
};

// In-process so that ThreadSanitizer sees the threads (the tsan test preset runs this suite).
TEST(ReplicatesThreads, ResultsDoNotDependOnHowManyRunAtATime) {
  const fs::path dir = temp_dir();
  const Scenario s = load_scenario(
      drawn_scenario(dir), {"experiment.replicates=4", "experiment.aggregate=trimmed_mean"});
  const std::string one_at_a_time = results_json(s, run_experiment(s, nullptr, 1)).dump();
  CountingProgress progress;
  const ExperimentResult r = run_experiment(s, &progress, 3);
  EXPECT_EQ(results_json(s, r).dump(), one_at_a_time);
  EXPECT_EQ(progress.begun, 1);
  EXPECT_EQ(progress.updates, 0);
  EXPECT_GE(progress.boards, 4);
  EXPECT_EQ(progress.last_done, 4U);
  std::vector<std::size_t> finished = progress.finished;
  std::sort(finished.begin(), finished.end());
  EXPECT_EQ(finished, (std::vector<std::size_t>{0, 1, 2, 3}));
  EXPECT_EQ(progress.seeds.size(), 4U);
}

// `memvirt run -j 1` and `-j 2` write the same bytes.
TEST(Replicates, CommandLineJobsGiveTheSameBytes) {
  const char* bin = std::getenv("MEMVIRT_BIN");
  if (bin == nullptr) GTEST_SKIP() << "MEMVIRT_BIN not set: run this test through ctest";
  const fs::path dir = temp_dir();
  const std::string sc = drawn_scenario(dir, "  replicates: 5\n  aggregate: trimmed_mean\n");
  for (const char* jobs : {"1", "2"}) {
    const std::string cmd = fmt::format("{} run -q {} -j {} -o {} > {}", bin, sc, jobs,
                                        (dir / jobs).string(), (dir / jobs).string() + ".txt");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  const std::string a = whole_file(dir / "1" / "results.json");
  EXPECT_EQ(a, whole_file(dir / "2" / "results.json"));
  EXPECT_EQ(whole_file(dir / "1" / "timeseries.csv"), whole_file(dir / "2" / "timeseries.csv"));
  const json j = json::parse(a);
  EXPECT_EQ(j["aggregate"]["replicates"], 5);
  EXPECT_EQ(j["replicates"].size(), 5U);
  const std::string summary = whole_file(dir / "2.txt");
  EXPECT_NE(summary.find("the mean of the middle 3 of 5 runs"), std::string::npos) << summary;
  EXPECT_NE(summary.find("run 4 (seed "), std::string::npos) << summary;
}

// Seed 003's five configurations all run as the seed did: five runs, middle three averaged
// (set once, in seed003-unchanged.yaml, which the other four build on).
TEST(Replicates, SeedThreeConfigurationsRunFiveTimesAndTrim) {
  for (const char* name : {"unchanged", "selfballoon", "tmem", "tmem-dedup", "tmem-dedup-comp"}) {
    const Scenario s =
        load_scenario(testing::source_path(fmt::format("scenarios/seed003-{}.yaml", name)));
    EXPECT_EQ(s.experiment.replicates, 5U) << name;
    EXPECT_EQ(s.experiment.aggregate, Aggregate::kTrimmedMean) << name;
    EXPECT_EQ(s.seed, 1U) << name;
  }
}

struct BadReplicates {
  const char* name;
  const char* lines;   // added to the experiment section
  const char* expect;  // "file:line: field: ..."
  const char* type = "fixed";
};

void PrintTo(const BadReplicates& c, std::ostream* os) {
  *os << c.name;
}

class ReplicatesErrors : public ::testing::TestWithParam<BadReplicates> {};

// A bad value is an error naming file, line and field, and `memvirt run` exits with status 2.
TEST_P(ReplicatesErrors, NameFileLineAndFieldAndExitWithStatusTwo) {
  const BadReplicates& c = GetParam();
  const fs::path dir = temp_dir();
  std::string text = drawn_text() + c.lines;
  text.replace(text.find("type: fixed"), 11, std::string("type: ") + c.type);
  const std::string file = write_file(dir / "drawn.yaml", text);
  try {
    (void)load_scenario(file);
    FAIL() << "accepted: " << c.name;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
  }
  const char* bin = std::getenv("MEMVIRT_BIN");
  if (bin == nullptr) GTEST_SKIP() << "MEMVIRT_BIN not set: run this test through ctest";
  const std::string err = (dir / "err.txt").string();
  const std::string cmd =
      fmt::format("{} run -q {} -o {} > /dev/null 2> {}", bin, file, (dir / "out").string(), err);
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << cmd;
  EXPECT_EQ(WEXITSTATUS(status), 2) << cmd;
  EXPECT_NE(whole_file(err).find(c.expect), std::string::npos) << whole_file(err);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ReplicatesErrors,
    ::testing::Values(
        BadReplicates{"zero", "  replicates: 0\n",
                      "drawn.yaml:20: experiment.replicates: 0 is out of range"},
        BadReplicates{"trimmed_mean_of_two", "  replicates: 2\n  aggregate: trimmed_mean\n",
                      "drawn.yaml:21: experiment.aggregate: trimmed_mean drops the highest and "
                      "the lowest run: it needs replicates: 3 or more"},
        BadReplicates{"trimmed_mean_of_one", "  aggregate: trimmed_mean\n",
                      "drawn.yaml:20: experiment.aggregate: trimmed_mean"},
        BadReplicates{"unknown_aggregate", "  replicates: 3\n  aggregate: median\n",
                      "drawn.yaml:21: experiment.aggregate: 'median' is not one of: mean, "
                      "trimmed_mean"},
        BadReplicates{"not_a_number", "  replicates: five\n",
                      "drawn.yaml:20: experiment.replicates:"},
        BadReplicates{"density", "  replicates: 3\n",
                      "drawn.yaml:20: experiment.replicates: only 'fixed' experiments run "
                      "replicates; a 'density' experiment runs once",
                      "density"},
        BadReplicates{"launch", "  replicates: 3\n",
                      "drawn.yaml:20: experiment.replicates: only 'fixed' experiments run "
                      "replicates; a 'launch' experiment runs once",
                      "launch"}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

}  // namespace
}  // namespace memvirt
