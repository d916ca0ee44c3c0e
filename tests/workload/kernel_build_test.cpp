// kernel_build: make -jN over a small synthetic build profile, in one guest with a disk and
// vCPUs on a host scheduler.
#include "workload/kernel_build.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "core/error.hpp"
#include "guest/block.hpp"
#include "host/cpu_scheduler.hpp"
#include "scenario/experiment.hpp"
#include "scenario/scenario.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

// Six headers, eight units (1 CPU-s, 20 MiB of maximum RSS each), an archive of the first
// four objects and a relocatable link of the archive and two more objects.
const char* kProfile = R"({"format": "memvirt-kernel-build-profile/1",
"headers": [
["include/a.h", 9000, 8, 0],
["include/b.h", 5000, 8, 0],
["include/c.h", 300, 4, 0],
["include/generated/d.h", 12000, 4, 1],
["include/e.h", 70000, 2, 0],
["lib/inc.c", 2000, 1, 0]
],
"units": [
{"src": "a/one.c", "src_bytes": 20000, "headers": [[0, 2]], "obj": "a/one.o", "obj_bytes": 30000, "cpu_s": 1.0, "max_rss_kib": 20480, "start_s": 0.0},
{"src": "a/two.c", "src_bytes": 8000, "headers": [[0, 1], [3, 3]], "obj": "a/two.o", "obj_bytes": 9000, "cpu_s": 1.0, "max_rss_kib": 20480, "start_s": 0.1},
{"src": "a/three.c", "src_bytes": 100, "headers": [[0, 3]], "obj": "a/three.o", "obj_bytes": 800, "cpu_s": 1.0, "max_rss_kib": 20480, "start_s": 0.2},
{"src": "a/four.c", "src_bytes": 150000, "headers": [[0, 1], [4, 4]], "obj": "a/four.o", "obj_bytes": 200000, "cpu_s": 1.0, "max_rss_kib": 20480, "start_s": 0.3},
{"src": "b/five.c", "src_bytes": 4096, "headers": [[0, 0]], "obj": "b/five.o", "obj_bytes": 4096, "cpu_s": 1.0, "max_rss_kib": 20480, "start_s": 1.0},
{"src": "b/six.c", "src_bytes": 5000, "headers": [[0, 2], [5, 5]], "obj": "b/six.o", "obj_bytes": 12000, "cpu_s": 1.0, "max_rss_kib": 20480, "start_s": 1.1},
{"src": "c/seven.c", "src_bytes": 30000, "headers": [[0, 1], [3, 4]], "obj": "c/seven.o", "obj_bytes": 40000, "cpu_s": 1.0, "max_rss_kib": 20480, "start_s": 1.2},
{"src": "c/eight.c", "src_bytes": 6000, "headers": [[1, 3]], "obj": "c/eight.o", "obj_bytes": 7000, "cpu_s": 1.0, "max_rss_kib": 20480, "start_s": 1.3}
],
"links": [
{"kind": "ar-thin", "out": "a/built-in.a", "out_bytes": 300, "inputs": [["a/one.o", 30000], ["a/two.o", 9000], ["a/three.o", 800], ["a/four.o", 200000]], "cpu_s": 0.01, "max_rss_kib": 6000, "start_s": 0.9},
{"kind": "ld-r", "out": "b/b.o", "out_bytes": 250000, "inputs": [["a/built-in.a", 300], ["b/five.o", 4096], ["b/six.o", 12000], ["scripts/b.lds", 1500]], "cpu_s": 0.05, "max_rss_kib": 30000, "start_s": 1.15}
],
"phases": {"clean": {"user_s": 0.2, "sys_s": 0.1}, "prepare_after_clean": {"user_s": 0.3, "sys_s": 0.1}},
"totals": {"cpu_rest_s": 0.4, "cpu_other_compiler_calls_s": 0.0},
"clean": {"deleted_by_ext": {".cmd": {"files": 10, "bytes": 100000}}}
}
)";

constexpr std::size_t kUnits = 8;
constexpr std::size_t kSteps = 10;

std::string profile_file(const std::string& text = kProfile) {
  return testing::write_file(testing::temp_dir() / "profile.json", text);
}

KernelBuild::Config config(unsigned jobs, unsigned builds, bool overhead = false) {
  KernelBuild::Config c;
  c.profile = std::make_shared<const KernelBuildProfile>(
      load_kernel_build_profile(profile_file(), overhead));
  c.jobs = jobs;
  c.builds = builds;
  c.make_overhead = overhead;
  c.chunk_pages = (64ULL << 20) / kPageSize;
  return c;
}

// One guest with a disk (1 ms per request) and `vcpus` vCPUs on as many host CPUs.
struct Rig {
  explicit Rig(Bytes memory, unsigned vcpus = 1, Bytes swap = Bytes{0})
      : costs(CostProfile::load(testing::source_path("profiles/default.yaml"))),
        host(std::make_unique<FingerprintStore>()),
        vcpu("vcpu", vcpus),
        faults("faults", 1),
        disk(queue, Duration::millis(1)),
        cpus(queue, vcpus) {
    GuestKernelConfig cfg;
    cfg.memory = memory;
    cfg.vcpus = vcpus;
    cfg.swap = swap;
    vm = host.add_vm(memory);
    kernel = std::make_unique<GuestKernel>(cfg, host, vm, costs, vcpu, faults);
    kernel->attach_cpus(queue, cpus, cpus.add_group(vcpus));
    kernel->attach_disk(queue, disk, (1ULL << 30) / kSectorSize);
  }
  void start(KernelBuild& w) {
    WorkloadEnv env;
    env.queue = &queue;
    env.kernel = kernel.get();
    env.vm_alive = &alive;
    env.seed = 7;
    env.finished = [this] {
      ++finished;
      finished_at = queue.now();
    };
    w.start(env);
  }
  // Runs until `done` holds (checked after every event) or an hour of virtual time passes.
  void run_until(const std::function<bool()>& done) {
    const TimePoint limit = queue.now() + Duration::seconds(3600);
    while (!done() && queue.step(limit)) {
    }
  }
  void run_to_end() {
    run_until([this] { return finished > 0; });
  }

  EventQueue queue;
  CostProfile costs;
  HostMemory host;
  CostAccount vcpu;
  CostAccount faults;
  FixedLatencyDisk disk;
  CpuScheduler cpus;
  VmId vm;
  std::unique_ptr<GuestKernel> kernel;
  bool alive = true;
  int finished = 0;
  TimePoint finished_at{};
};

double build_seconds(const KernelBuild::Config& c, Bytes memory, unsigned vcpus) {
  Rig rig(memory, vcpus);
  KernelBuild w(c);
  rig.start(w);
  rig.run_to_end();
  EXPECT_EQ(rig.finished, 1);
  EXPECT_EQ(w.stats().cycles.value(), c.builds);
  return rig.finished_at.seconds();
}

TEST(KernelBuild, EveryOutputExistsWithItsSize) {
  Rig rig(Bytes{512ULL << 20});
  const KernelBuild::Config c = config(4, 1, true);
  KernelBuild w(c);
  rig.start(w);
  rig.run_to_end();
  ASSERT_EQ(rig.finished, 1);
  EXPECT_EQ(w.stats().cycles.value(), 1U);
  EXPECT_EQ(w.stats().operations.value(), kUnits);
  EXPECT_EQ(w.stats().killed.value(), 0U);
  EXPECT_EQ(w.builds_failed(), 0U);
  const KernelBuildProfile& p = *c.profile;
  ASSERT_EQ(p.steps.size(), kSteps);
  for (std::size_t s = 0; s < kSteps; ++s) {
    const std::optional<FileId> f = w.output(s);
    ASSERT_TRUE(f.has_value()) << s;
    EXPECT_TRUE(rig.kernel->file(*f).live);
    EXPECT_EQ(rig.kernel->file(*f).pages, file_pages(p.steps[s].out_bytes)) << s;
    const std::optional<FileId> cmd = w.cmd_file(s);
    ASSERT_TRUE(cmd.has_value());
    EXPECT_EQ(rig.kernel->file(*cmd).pages, file_pages(10000));  // 100000 B / 10 files
  }
  // The tree: six headers, eight sources and the linker script no step makes.
  EXPECT_EQ(w.tree_files().size(), 6U + 8U + 1U);
  // Every tree file was read once from disk (cold), and the anonymous memory came and went.
  EXPECT_GE(rig.kernel->stats().sectors_read.value(), p.tree_pages() * kSectorsPerPage);
  EXPECT_EQ(w.stats().pages_freed.value(),
            kUnits * static_cast<std::uint64_t>(0.66 * 20480 * 1024 / kPageSize) +
                static_cast<std::uint64_t>(0.66 * 6000 * 1024 / kPageSize) +
                static_cast<std::uint64_t>(0.66 * 30000 * 1024 / kPageSize));
}

TEST(KernelBuild, MakeCleanDeletesThePreviousBuildsOutputs) {
  Rig rig(Bytes{512ULL << 20});
  KernelBuild w(config(4, 2, true));
  rig.start(w);
  rig.run_to_end();
  ASSERT_EQ(rig.finished, 1);
  EXPECT_EQ(w.stats().cycles.value(), 2U);
  EXPECT_EQ(w.stats().operations.value(), 2 * kUnits);
  // Files are numbered in creation order: the tree, then each build's outputs. Every file
  // after the tree is either an output of the last build or deleted.
  std::set<std::uint32_t> current;
  std::uint32_t last = 0;
  for (std::size_t s = 0; s < kSteps; ++s) {
    for (const auto f : {w.output(s), w.cmd_file(s)}) {
      ASSERT_TRUE(f.has_value());
      current.insert(f->value());
      last = std::max(last, f->value());
    }
  }
  const auto tree = static_cast<std::uint32_t>(w.tree_files().size());
  EXPECT_EQ(last + 1, tree + 2 * 2 * kSteps);  // two builds of outputs and .cmd files
  std::size_t deleted = 0;
  for (std::uint32_t f = tree; f <= last; ++f) {
    const bool live = rig.kernel->file(FileId{f}).live;
    EXPECT_EQ(live, current.contains(f)) << f;
    if (!live) ++deleted;
  }
  EXPECT_EQ(deleted, 2 * kSteps);
  for (std::uint32_t f = 0; f < tree; ++f) EXPECT_TRUE(rig.kernel->file(FileId{f}).live);
}

TEST(KernelBuild, WithoutCleanEachBuildRewritesItsOutputsInPlace) {
  Rig rig(Bytes{512ULL << 20});
  KernelBuild::Config c = config(4, 2, true);
  c.clean_first = false;
  KernelBuild w(c);
  rig.start(w);
  rig.run_to_end();
  ASSERT_EQ(rig.finished, 1);
  EXPECT_EQ(w.stats().cycles.value(), 2U);
  const auto tree = static_cast<std::uint32_t>(w.tree_files().size());
  for (std::size_t s = 0; s < kSteps; ++s) {
    ASSERT_TRUE(w.output(s).has_value());
    EXPECT_LT(w.output(s)->value(), tree + 2 * kSteps);  // the first build's files, reused
    EXPECT_EQ(rig.kernel->file(*w.output(s)).pages, file_pages(c.profile->steps[s].out_bytes));
  }
}

TEST(KernelBuild, MoreJobsFinishSoonerOnFourVcpus) {
  const double one = build_seconds(config(1, 1), Bytes{1ULL << 30}, 4);
  const double four = build_seconds(config(4, 1), Bytes{1ULL << 30}, 4);
  // Eight 1 CPU-s units: about 8 s one at a time, about 2 s four at a time.
  EXPECT_GT(one, 8.0);
  EXPECT_LT(four, 0.4 * one) << one << " " << four;
  EXPECT_GT(four, 2.0);
}

TEST(KernelBuild, MoreJobsAreNoFasterOnOneVcpu) {
  // CPU-bound: the jobs share one vCPU fairly, so four at a time take as long as one at a
  // time, less only the disk waits that run beside other jobs' computing.
  const double one = build_seconds(config(1, 1), Bytes{1ULL << 30}, 1);
  const double four = build_seconds(config(4, 1), Bytes{1ULL << 30}, 1);
  EXPECT_GT(one, 8.0);
  EXPECT_GE(four, 8.0);
  EXPECT_GE(four, 0.97 * one) << one << " " << four;
}

TEST(KernelBuild, SecondBuildFindsTheTreeCached) {
  Rig rig(Bytes{512ULL << 20});
  KernelBuild w(config(4, 2, true));
  rig.start(w);
  rig.run_until([&] { return w.stats().cycles.value() == 1; });
  const std::uint64_t first = rig.kernel->stats().sectors_read.value();
  rig.run_to_end();
  const std::uint64_t second = rig.kernel->stats().sectors_read.value() - first;
  EXPECT_GT(first, 0U);
  EXPECT_LT(second, first / 10) << first << " " << second;
  // The compilers read(2) their files: waits for the disk, but no page faults.
  EXPECT_EQ(rig.kernel->stats().major_faults.value(), 0U);
}

std::string outcome(const KernelBuild::Config& c, Bytes memory, unsigned vcpus, Bytes swap) {
  Rig rig(memory, vcpus, swap);
  KernelBuild w(c);
  rig.start(w);
  rig.run_to_end();
  const GuestStats& g = rig.kernel->stats();
  const WorkloadStats& s = w.stats();
  return std::to_string(rig.finished_at.ns()) + " " + std::to_string(s.cycles.value()) + " " +
         std::to_string(s.operations.value()) + " " + std::to_string(s.pages_touched.value()) +
         " " + std::to_string(s.killed.value()) + " " + std::to_string(g.sectors_read.value()) +
         " " + std::to_string(g.sectors_written.value()) + " " +
         std::to_string(g.major_faults.value()) + " " + std::to_string(g.pswpout.value()) + " " +
         std::to_string(g.pswpin.value()) + " " + std::to_string(rig.vcpu.busy().ps);
}

struct BuildRun {
  double seconds = 0;
  std::uint64_t pswpin = 0, pswpout = 0, major_faults = 0, sectors_read = 0, sectors_written = 0;
  std::uint64_t killed = 0, cycles = 0, pages_touched = 0;
  CpuTime vcpu{};
};

BuildRun build_run(const KernelBuild::Config& c, Bytes memory, unsigned vcpus, Bytes swap) {
  Rig rig(memory, vcpus, swap);
  KernelBuild w(c);
  rig.start(w);
  rig.run_to_end();
  EXPECT_EQ(rig.finished, 1);
  const GuestStats& g = rig.kernel->stats();
  return {rig.finished_at.seconds(),
          g.pswpin.value(),
          g.pswpout.value(),
          g.major_faults.value(),
          g.sectors_read.value(),
          g.sectors_written.value(),
          w.stats().killed.value(),
          w.stats().cycles.value(),
          w.stats().pages_touched.value(),
          rig.vcpu.busy()};
}

TEST(KernelBuild, ReusedPagesComeBackFromSwapAndSlowTheBuild) {
  // Eight 13.5 MiB compilers at once in a 64 MiB guest with swap: reclaim swaps their pages
  // out. Touched once, none is read back; re-accessed, the swapped ones are read back, and
  // the compilers wait for them.
  KernelBuild::Config once = config(8, 1);
  once.reuse = 0;
  KernelBuild::Config again = config(8, 1);
  again.reuse = 0.3;
  const BuildRun a = build_run(once, Bytes{64ULL << 20}, 2, Bytes{256ULL << 20});
  const BuildRun b = build_run(again, Bytes{64ULL << 20}, 2, Bytes{256ULL << 20});
  EXPECT_EQ(a.cycles, 1U);
  EXPECT_EQ(b.cycles, 1U);
  EXPECT_EQ(a.killed + b.killed, 0U);
  EXPECT_GT(a.pswpout, 0U);
  EXPECT_EQ(a.pswpin, 0U);
  EXPECT_GT(b.pswpin, 0U);
  EXPECT_GT(b.major_faults, a.major_faults);
  EXPECT_GT(b.sectors_read, a.sectors_read);
  EXPECT_GT(b.seconds, a.seconds) << a.seconds << " " << b.seconds;
  // The re-accesses are not first touches.
  EXPECT_EQ(b.pages_touched, a.pages_touched);
}

TEST(KernelBuild, WithAmpleMemoryReuseChangesNothingButCpu) {
  // In a guest that holds every compiler, a re-access finds its page resident: no fault,
  // no I/O; its cost is in the measured CPU time already.
  KernelBuild::Config once = config(8, 1);
  once.reuse = 0;
  KernelBuild::Config again = config(8, 1);
  again.reuse = 1;
  const BuildRun a = build_run(once, Bytes{1ULL << 30}, 2, Bytes{256ULL << 20});
  const BuildRun b = build_run(again, Bytes{1ULL << 30}, 2, Bytes{256ULL << 20});
  EXPECT_EQ(a.pswpout + b.pswpout + a.pswpin + b.pswpin, 0U);
  EXPECT_EQ(b.major_faults, a.major_faults);
  EXPECT_EQ(b.sectors_read, a.sectors_read);
  EXPECT_EQ(b.sectors_written, a.sectors_written);
  EXPECT_EQ(b.pages_touched, a.pages_touched);
  EXPECT_NEAR(b.seconds, a.seconds, 1e-3 * a.seconds);
  EXPECT_NEAR(static_cast<double>(b.vcpu.ps), static_cast<double>(a.vcpu.ps),
              1e-3 * static_cast<double>(a.vcpu.ps));
}

TEST(KernelBuild, SameRunTwiceGivesIdenticalResults) {
  // Under memory pressure (swap, reclaim of the tree), where most can differ.
  const KernelBuild::Config c = config(8, 2, true);
  ASSERT_GT(c.reuse, 0);  // the measured default: swapped-out pages are read back too
  const std::string a = outcome(c, Bytes{64ULL << 20}, 2, Bytes{256ULL << 20});
  const std::string b = outcome(c, Bytes{64ULL << 20}, 2, Bytes{256ULL << 20});
  EXPECT_EQ(a, b);
  std::istringstream words(a);
  std::string pswpin;
  for (int i = 0; i < 10; ++i) words >> pswpin;  // the tenth number of the outcome
  EXPECT_NE(pswpin, "0") << a;
  EXPECT_NE(a, outcome(c, Bytes{512ULL << 20}, 2, Bytes{256ULL << 20}));
}

TEST(KernelBuild, AnOomKilledCompilerFailsTheBuildAndTheNextOneRuns) {
  // 8 x 13 MiB of compilers in a 48 MiB guest without swap: the OOM killer ends some; each
  // build stops starting steps, and the command sequence goes on to the next.
  Rig rig(Bytes{48ULL << 20}, 1);
  KernelBuild w(config(8, 2));
  rig.start(w);
  rig.run_to_end();
  ASSERT_EQ(rig.finished, 1);
  EXPECT_GT(w.stats().killed.value(), 0U);
  EXPECT_GT(rig.kernel->stats().oom_kills.value(), 0U);
  EXPECT_EQ(w.stats().cycles.value() + w.builds_failed(), 2U);
  EXPECT_GT(w.builds_failed(), 0U);
}

TEST(KernelBuildProfile, MalformedJsonNamesTheFileAndLine) {
  std::string text = kProfile;
  text.replace(text.find("\"cpu_s\": 1.0, \"max_rss_kib\": 20480, \"start_s\": 0.1"), 8,
               "\"cpu_s\" 1.0");
  const std::string file = profile_file(text);
  try {
    load_kernel_build_profile(file, false);
    FAIL() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(file + ":12: malformed JSON"), std::string::npos)
        << e.what();
  }
}

TEST(KernelBuildProfile, MissingOrBadFieldsNameTheFileAndField) {
  const struct {
    const char* replace;
    const char* with;
    const char* expect;
    bool overhead;
  } cases[] = {
      {"\"cpu_s\": 1.0, \"max_rss_kib\": 20480, \"start_s\": 0.1",
       "\"max_rss_kib\": 20480, \"start_s\": 0.1", "units[1].cpu_s: missing", false},
      {"[[0, 1], [3, 3]]", "[[0, 1], [3, 9]]", "units[1].headers[1][1]: 9 is not an index", false},
      {"\"obj_bytes\": 800", "\"obj_bytes\": -5", "units[2].obj_bytes: -5 is negative", false},
      {"\"obj_bytes\": 800", "\"obj_bytes\": \"big\"", "units[2].obj_bytes: expected a whole",
       false},
      {"[\"b/five.o\", 4096]", "[\"c/seven.o\", 4096]",
       "links[1].inputs[1][0]: 'c/seven.o' is made by a step that starts later", false},
      {"\"out\": \"b/b.o\"", "\"out\": \"a/one.o\"", "links[1].out: 'a/one.o' is the output",
       false},
      {"\"format\": \"memvirt-kernel-build-profile/1\"", "\"format\": \"x\"",
       "format: 'x' is not a build profile", false},
      {"\"totals\": {\"cpu_rest_s\": 0.4,", "\"totals\": {", "totals.cpu_rest_s: missing", true},
  };
  for (const auto& c : cases) {
    std::string text = kProfile;
    const auto at = text.find(c.replace);
    ASSERT_NE(at, std::string::npos) << c.replace;
    text.replace(at, std::string(c.replace).size(), c.with);
    const std::string file = profile_file(text);
    try {
      load_kernel_build_profile(file, c.overhead);
      ADD_FAILURE() << "accepted: " << c.expect;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(file + ": " + c.expect), std::string::npos) << e.what();
    }
  }
  // The totals are needed only with the overhead.
  std::string text = kProfile;
  const std::string rest = "\"totals\": {\"cpu_rest_s\": 0.4,";
  text.replace(text.find(rest), rest.size(), "\"totals\": {");
  EXPECT_NO_THROW(load_kernel_build_profile(profile_file(text), false));
  EXPECT_THROW(load_kernel_build_profile("/nonexistent/p.json", false), InputError);
}

TEST(KernelBuildProfile, TheShippedProfileLoads) {
  const KernelBuildProfile p =
      load_kernel_build_profile(testing::source_path(KernelBuild::kDefaultProfile), true);
  EXPECT_EQ(p.units, 938U);
  EXPECT_EQ(p.links, 75U);
  EXPECT_EQ(p.steps.size(), 938U + 75U);
  // 1,991 headers, 938 sources (two of which are also headers).
  EXPECT_EQ(p.tree.size(), 1991U + 938U - 2U);
  double cpu = 0;
  std::uint64_t reads = 0;
  for (const auto& s : p.steps) {
    cpu += s.cpu_s;
    if (!s.link) reads += s.reads.size();
  }
  EXPECT_NEAR(cpu, 471.67 + 0.277, 0.05);  // totals.cpu_units_s + link_cpu_s
  EXPECT_EQ(reads, 938U + 527248U);        // sources + totals.unit_n_headers.sum
  EXPECT_NEAR(p.clean_cpu_s, 2.658 + 0.896, 1e-9);
  EXPECT_NEAR(p.prepare_cpu_s, 7.304 + 1.798, 1e-9);
  EXPECT_NEAR(p.rest_cpu_s, 55.253 + 0.71, 1e-9);
  EXPECT_EQ(p.cmd_bytes, 46068041U / 1159U);
}

// A scenario naming the profile beside it, as the shipped scenarios name theirs.
std::string scenario_text(const std::string& profile) {
  return testing::with_source_profile(R"(name: kb
calibration: profiles/default.yaml
host: {memory: 2GiB, cpus: 2}
vm:
  memory: 256MiB
  disk: 1GiB
  kernel: {swap: 256MiB}
  workloads:
    - type: kernel_build
      profile: )" + profile + R"(
      jobs: 4
experiment: {type: fixed, vms: 2, duration: 5min, sample_interval: 10s}
)");
}

TEST(KernelBuildScenario, RunsAndReportsItsCompletion) {
  const fs::path dir = testing::temp_dir();
  testing::write_file(dir / "tiny.json", kProfile);
  const std::string file = testing::write_file(dir / "kb.yaml", scenario_text("tiny.json"));
  const Scenario s = load_scenario(file);
  const ExperimentResult r = run_experiment(s);
  ASSERT_TRUE(r.run.completion_s.has_value());
  // Two VMs on two host CPUs, each two builds of 8 x 1.05 CPU-s (with make's share) on its
  // one vCPU, plus the cleans and prepares.
  EXPECT_GT(*r.run.completion_s, 2 * (8 * 1.05 + 0.3 + 0.4));
  EXPECT_LT(*r.run.completion_s, 30.0);
  EXPECT_EQ(r.run.workload_cycles, 4U);
  EXPECT_GT(r.run.sectors_read, 0U);
  EXPECT_GT(r.run.sectors_written, 0U);
}

TEST(KernelBuildScenario, AMalformedProfileIsNamedWithItsField) {
  const fs::path dir = testing::temp_dir();
  std::string text = kProfile;
  const std::string cpu = "\"cpu_s\": 1.0, \"max_rss_kib\": 20480, \"start_s\": 0.1";
  text.replace(text.find(cpu), cpu.size(), "\"max_rss_kib\": 20480, \"start_s\": 0.1");
  testing::write_file(dir / "bad.json", text);
  const std::string file = testing::write_file(dir / "kb.yaml", scenario_text("bad.json"));
  try {
    load_scenario(file);
    FAIL() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "bad.json").string() + ": units[1].cpu_s: missing"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace memvirt
