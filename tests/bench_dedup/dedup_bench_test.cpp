// The parts of `memvirt bench dedup` that run without the host's KSM: the content mix, the
// steady-state rule, KSM settings saved and put back (against a fake sysfs folder), ksmd's CPU
// time (against a fake /proc), the model phase, the PageONE phase on a small mix, and the
// report's ratios.
#include "bench_dedup/dedup_bench.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "bench_dedup/content_mix.hpp"
#include "bench_dedup/report.hpp"
#include "bench_dedup/steady_state.hpp"
#include "core/error.hpp"
#include "real/ksm_sysfs.hpp"
#include "real/proc_stats.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

TEST(DedupContentMix, EveryRegionHoldsTheCommonContentsOnce) {
  ContentMixConfig cfg;
  cfg.total = Bytes{16ULL << 20};  // 4096 pages, 1024 per region
  const ContentMix mix = make_content_mix(cfg);
  ASSERT_EQ(mix.pages.size(), 4096U);
  EXPECT_EQ(mix.distinct_shared, 512U);
  EXPECT_EQ(mix.shared_pages, 2048U);
  EXPECT_EQ(mix.zero_pages, 4U * 102);
  EXPECT_EQ(mix.rewritten.size(), 4U * 51);
  EXPECT_EQ(mix.unique_pages, 4096U - 2048 - 408 - 204);
  EXPECT_EQ(mix.mergeable_pages(), 2048U - 512 + 408);
  std::map<std::uint64_t, int> copies;
  std::set<std::uint64_t> unique;
  std::size_t zeros = 0;
  for (std::uint32_t p = 0; p < mix.pages.size(); ++p) {
    const Fingerprint fp = mix.pages[p];
    if (fp == kZeroContent) {
      ++zeros;
    } else if (is_unique_content(fp)) {
      EXPECT_TRUE(unique.insert(fp.value()).second) << "a unique content repeats";
    } else {
      ++copies[fp.value()];
    }
  }
  EXPECT_EQ(zeros, mix.zero_pages);
  EXPECT_EQ(copies.size(), mix.distinct_shared);
  for (const auto& [fp, n] : copies) EXPECT_EQ(n, 4) << "one copy per region";
  // Each region's common contents are its own copy: region r holds each exactly once.
  for (std::uint32_t p = 0; p < 1024; ++p) {
    if (!is_unique_content(mix.pages[p]) && mix.pages[p] != kZeroContent) {
      EXPECT_EQ(std::count(mix.pages.begin(), mix.pages.begin() + 1024, mix.pages[p]), 1);
    }
  }
}

TEST(DedupContentMix, SameSeedSameLayoutAndRewritesAreFresh) {
  ContentMixConfig cfg;
  cfg.total = Bytes{4ULL << 20};
  const ContentMix a = make_content_mix(cfg);
  const ContentMix b = make_content_mix(cfg);
  EXPECT_EQ(a.pages, b.pages);
  EXPECT_EQ(a.rewritten, b.rewritten);
  cfg.seed = 2;
  EXPECT_NE(make_content_mix(cfg).pages, a.pages);
  const ContentMixConfig first;  // seed 1, as `a` was made
  const std::uint32_t page = a.rewritten.front();
  EXPECT_EQ(a.pages[page], rewritten_content(first, page, 0));
  const Fingerprint g1 = rewritten_content(first, page, 1);
  EXPECT_NE(g1, rewritten_content(first, page, 2));
  EXPECT_NE(g1, rewritten_content(first, page + 1, 1));
  EXPECT_TRUE(is_unique_content(g1));
  // The writer's word changes with every rewrite and differs between pages.
  std::set<std::uint64_t> words;
  for (std::uint64_t gen = 1; gen <= 100; ++gen) {
    for (std::uint32_t p = 0; p < 100; ++p) words.insert(rewrite_word(first, p, gen));
  }
  EXPECT_EQ(words.size(), 100U * 100U);
}

TEST(DedupContentMix, BadFractionsNameTheirFlag) {
  ContentMixConfig cfg;
  cfg.zero = 1.5;
  try {
    make_content_mix(cfg);
    FAIL() << "accepted --zero 1.5";
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().field, "--zero");
  }
  cfg.zero = 0.6;
  EXPECT_THROW(make_content_mix(cfg), InputError);  // 0.5 + 0.6 + 0.05 > 1
  cfg = ContentMixConfig{};
  cfg.regions = 0;
  EXPECT_THROW(make_content_mix(cfg), InputError);
}

TEST(DedupSteadyState, FirstSampleOfTheLastPlateauOnceReady) {
  SteadyStateRule rule;
  rule.samples = 4;
  SteadyStateDetector d(rule);
  // A plateau at zero before the engine is ready does not count.
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(d.add(0.1 * i, 0, false));
  // A ramp, then a plateau with noise under 1 %.
  const std::uint64_t ramp[] = {1000, 4000, 8000, 9990, 10050, 9980, 10020, 10000, 10000};
  bool steady = false;
  for (int i = 0; i < 9; ++i) steady = d.add(1.0 + 0.1 * i, ramp[i], true);
  EXPECT_TRUE(steady);
  ASSERT_TRUE(d.time().has_value());
  EXPECT_DOUBLE_EQ(*d.time(), 1.3);
  EXPECT_EQ(d.value(), 9990U);
  EXPECT_EQ(d.index(), 9U);
}

TEST(DedupSteadyState, SlowDriftIsNotSteady) {
  SteadyStateRule rule;
  rule.samples = 10;
  SteadyStateDetector d(rule);
  // +0.5 % per sample: each step is within 1 %, the window is not.
  double v = 10000;
  for (int i = 0; i < 40; ++i) {
    EXPECT_FALSE(d.add(i, static_cast<std::uint64_t>(v), true)) << i;
    v *= 1.005;
  }
}

class DedupKsmSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = testing::temp_dir() / "ksm";
    state = testing::temp_dir() / "state";
    fs::remove_all(dir);
    fs::remove_all(state);
    fs::create_directories(dir);
    put("run", "0");
    put("pages_to_scan", "100");
    put("sleep_millisecs", "20");
    put("advisor_mode", "[none] scan-time");
    put("pages_sharing", "0");
  }
  void put(const std::string& knob, const std::string& v) {
    std::ofstream(dir / knob) << v << "\n";
  }
  [[nodiscard]] KsmStateStore store() const { return KsmStateStore(state); }
  fs::path dir;
  fs::path state;  // the state file's folder (real/ksm_state.hpp)
};

TEST_F(DedupKsmSysfs, SettingsGoBackWhenTheGuardEnds) {
  const KsmSysfs ksm(dir);
  std::string why;
  ASSERT_TRUE(ksm.available(why)) << why;
  EXPECT_EQ(ksm.read("advisor_mode"), "none");  // the bracketed choice
  EXPECT_EQ(ksm.read_number("pages_to_scan"), 100U);
  {
    KsmSettingsGuard g(ksm,
                       {{"run", "1"},
                        {"pages_to_scan", "5000"},
                        {"smart_scan", "0"},  // absent here: skipped
                        {"advisor_mode", "scan-time"}},
                       store());
    EXPECT_EQ(slurp(dir / "run"), "1");
    EXPECT_EQ(slurp(dir / "pages_to_scan"), "5000");
    EXPECT_EQ(slurp(dir / "advisor_mode"), "scan-time");
    EXPECT_EQ(g.skipped(), std::vector<std::string>{"smart_scan"});
    ASSERT_EQ(g.saved().size(), 3U);
    EXPECT_EQ(g.saved().back().first, "run");  // applied last
  }
  EXPECT_EQ(slurp(dir / "run"), "0");
  EXPECT_EQ(slurp(dir / "pages_to_scan"), "100");
  EXPECT_EQ(slurp(dir / "advisor_mode"), "none");
  EXPECT_EQ(slurp(dir / "sleep_millisecs"), "20");  // never touched
  EXPECT_FALSE(fs::exists(dir / "smart_scan"));
}

TEST_F(DedupKsmSysfs, SettingsGoBackWhenAnErrorUnwinds) {
  const KsmSysfs ksm(dir);
  try {
    const KsmSettingsGuard g(ksm, {{"sleep_millisecs", "0"}, {"run", "1"}}, store());
    EXPECT_EQ(slurp(dir / "sleep_millisecs"), "0");
    throw std::runtime_error("measurement failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(slurp(dir / "sleep_millisecs"), "20");
  EXPECT_EQ(slurp(dir / "run"), "0");
}

TEST_F(DedupKsmSysfs, AKnobAnotherProcessChangedIsLeftAsItSetIt) {
  const KsmSysfs ksm(dir);
  std::vector<std::string> problems;
  {
    KsmSettingsGuard g(ksm, {{"pages_to_scan", "5000"}, {"run", "1"}}, store());
    EXPECT_FALSE(g.changed_by_others().has_value());
    put("pages_to_scan", "300");  // another user of KSM takes over
    EXPECT_EQ(g.changed_by_others(), "pages_to_scan");
    problems = g.restore();
  }
  EXPECT_EQ(slurp(dir / "pages_to_scan"), "300");
  EXPECT_EQ(slurp(dir / "run"), "0");
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_NE(problems[0].find("pages_to_scan"), std::string::npos);
}

TEST_F(DedupKsmSysfs, ARunningKsmIsLeftAlone) {
  put("run", "1");
  DedupBenchConfig cfg;
  cfg.ksm_sysfs = dir;
  cfg.ksm_state_dir = state;
  cfg.proc = dir / "no-proc";  // never reached
  cfg.mix.total = Bytes{4ULL << 20};
  DedupProgress quiet;
  const DedupPhaseResult r = run_real_ksm(cfg, make_content_mix(cfg.mix), quiet);
  EXPECT_FALSE(r.ran());
  EXPECT_NE(r.skipped.find("already running"), std::string::npos) << r.skipped;
  EXPECT_EQ(slurp(dir / "run"), "1");
  EXPECT_EQ(slurp(dir / "pages_to_scan"), "100");
}

TEST_F(DedupKsmSysfs, AKnobThatCannotBeWrittenUndoesTheOthers) {
  fs::create_directories(dir / "use_zero_pages");  // a folder: writing it fails
  const KsmSysfs ksm(dir);
  EXPECT_THROW(
      (KsmSettingsGuard(ksm, {{"pages_to_scan", "777"}, {"use_zero_pages", "1"}}, store())),
      std::runtime_error);
  EXPECT_EQ(slurp(dir / "pages_to_scan"), "100");
}

TEST_F(DedupKsmSysfs, AbsentKsmIsReportedAndTheRealPhaseSkips) {
  const KsmSysfs none(dir / "missing");
  std::string why;
  EXPECT_FALSE(none.available(why));
  EXPECT_NE(why.find("missing"), std::string::npos);
  DedupBenchConfig cfg;
  cfg.ksm_sysfs = dir / "missing";
  cfg.ksm_state_dir = state;
  cfg.mix.total = Bytes{4ULL << 20};
  DedupProgress quiet;
  const DedupPhaseResult r = run_real_ksm(cfg, make_content_mix(cfg.mix), quiet);
  EXPECT_FALSE(r.ran());
  EXPECT_NE(r.skipped.find("missing"), std::string::npos);
}

TEST(DedupProc, FindsKsmdAndReadsItsCpuTime) {
  const fs::path proc = testing::temp_dir() / "proc";
  fs::remove_all(proc);
  fs::create_directories(proc / "7");
  fs::create_directories(proc / "42");
  fs::create_directories(proc / "self");
  std::ofstream(proc / "7" / "comm") << "bash\n";
  std::ofstream(proc / "42" / "comm") << "ksmd\n";
  // Fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt
  // cmajflt utime stime ...; the name itself may hold spaces and parentheses.
  std::ofstream(proc / "42" / "stat")
      << "42 (ks (m) d) S 2 0 0 0 -1 2129984 0 0 0 0 250 150 0 0 25 5 1\n";
  EXPECT_EQ(proc_find_comm("ksmd", proc), 42);
  EXPECT_FALSE(proc_find_comm("kswapd0", proc).has_value());
  const auto cpu = proc_cpu_seconds(42, proc);
  ASSERT_TRUE(cpu.has_value());
  EXPECT_DOUBLE_EQ(*cpu, 400.0 / static_cast<double>(sysconf(_SC_CLK_TCK)));
  EXPECT_FALSE(proc_cpu_seconds(7, proc).has_value());  // no stat file
  EXPECT_FALSE(proc_wait_seconds(42, proc).has_value());
  // schedstat, when there, gives nanoseconds on a CPU and waiting for one.
  std::ofstream(proc / "42" / "schedstat") << "1500000000 250000000 77\n";
  EXPECT_DOUBLE_EQ(*proc_cpu_seconds(42, proc), 1.5);
  EXPECT_DOUBLE_EQ(*proc_wait_seconds(42, proc), 0.25);
}

DedupBenchConfig small_config() {
  DedupBenchConfig cfg;
  cfg.mix.total = Bytes{8ULL << 20};
  cfg.ksm.pages_to_scan = 500;
  cfg.sample_interval = Duration::millis(20);
  cfg.rule.samples = 5;
  cfg.timeout = Duration::seconds(20);
  cfg.merge_period = Duration::millis(50);
  cfg.rewrite_period = Duration::millis(10);
  return cfg;
}

TEST(DedupModel, KsmModelMergesEveryDuplicateAndSettles) {
  const DedupBenchConfig cfg = small_config();
  const ContentMix mix = make_content_mix(cfg.mix);
  const CostProfile costs = CostProfile::load(testing::source_path("profiles/default.yaml"));
  DedupProgress quiet;
  const DedupPhaseResult r = run_model_ksm(cfg, mix, costs, quiet);
  ASSERT_TRUE(r.steady_time.has_value());
  // Zero pages merge into one KSM page of zeros (fewer than max_page_sharing of them): every
  // mergeable page but that one is saved; the rewritten pages never merge.
  EXPECT_EQ(r.at_steady.pages, mix.mergeable_pages() - 1);
  EXPECT_GE(r.at_steady.rounds, 2U);
  EXPECT_GT(r.at_steady.cpu_seconds, 0);
  // Two full scans visit every page of the mix twice.
  EXPECT_GE(r.at_steady.scanned, 2 * mix.pages.size() - mix.zero_pages);
  // A full scan of 2048 pages takes at least 5 batches of 500 with 20 ms sleeps.
  EXPECT_GT(*r.steady_time, 2 * 4 * 0.020);
}

TEST(DedupPageOne, RealPageOneSavesEveryDuplicateAndGivesMemoryBack) {
  const DedupBenchConfig cfg = small_config();
  const ContentMix mix = make_content_mix(cfg.mix);
  DedupProgress quiet;
  const DedupPhaseResult r = run_real_pageone(cfg, mix, quiet);
  ASSERT_TRUE(r.steady_time.has_value());
  // Zero pages are discarded, not shared: every mergeable page is saved.
  EXPECT_EQ(r.last.pages, mix.mergeable_pages());
  EXPECT_GE(r.at_steady.pages + cfg.rule.floor, mix.mergeable_pages());
  EXPECT_GE(r.at_steady.rounds, 3U);
  EXPECT_GT(r.at_steady.cpu_seconds, 0);
// Under a sanitizer, its shadow memory and allocator move RSS by megabytes: check RSS only in
// plain builds (RealPageOne.MergingGivesFramesBackToTheKernel checks it on a larger region).
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  const double freed_mib =
      (static_cast<double>(r.rss_filled) - static_cast<double>(r.at_steady.rss_bytes)) / (1 << 20);
  EXPECT_GT(freed_mib, 0.8 * Bytes::from_pages(mix.mergeable_pages()).mib());
#endif
}

TEST(DedupReport, RatiosAndOutputFiles) {
  DedupBenchResult r;
  r.config.mix.total = Bytes{4ULL << 20};
  r.mix = make_content_mix(r.config.mix);
  auto phase = [](const char* name, double t, std::uint64_t pages, double cpu) {
    DedupPhaseResult p;
    p.name = name;
    p.steady_time = t;
    p.at_steady = DedupSample{t, pages, cpu, 2, 0};
    p.last = p.at_steady;
    p.timeline = {DedupSample{t / 2, pages / 2, cpu / 2, 1, 0}, p.at_steady};
    return p;
  };
  r.real_ksm = phase("Linux KSM", 10.0, 1000, 0.5);
  r.model_ksm = phase("KSM model", 12.0, 1000, 0.4);
  r.pageone = phase("PageONE", 3.0, 1000, 0.01);
  ASSERT_TRUE(r.efficiency_ratio().has_value());
  EXPECT_DOUBLE_EQ(*r.efficiency_ratio(), (1000 / 0.01) / (1000 / 0.5));
  EXPECT_DOUBLE_EQ(*r.steady_time_ratio(), 1.2);
  const nlohmann::json j = dedup_json(r);
  EXPECT_TRUE(j["target_efficiency_met"].get<bool>());
  EXPECT_TRUE(j["target_steady_time_met"].get<bool>());
  EXPECT_EQ(j["phases"][2]["at_steady"]["pages_saved"], 1000);
  r.real_ksm.skipped = "no KSM here";
  EXPECT_FALSE(r.efficiency_ratio().has_value());
  EXPECT_FALSE(dedup_json(r).contains("target_efficiency_met"));
  const fs::path out = testing::temp_dir() / "out";
  write_dedup_outputs(out.string(), r);
  EXPECT_TRUE(fs::exists(out / "results.json"));
  EXPECT_EQ(slurp(out / "timeline.csv"),
            "phase,t_s,pages_saved,cpu_s,rounds,pages_scanned,rss_bytes");
  std::ostringstream text;
  print_dedup_report(text, r);
  EXPECT_NE(text.str().find("Linux KSM skipped: no KSM here"), std::string::npos);
}

}  // namespace
}  // namespace memvirt
