#include "bench_dedup/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "record/output_dir.hpp"

namespace memvirt {
namespace {

std::string or_dash(const std::optional<double>& v, const char* fmt_spec) {
  return v ? fmt::format(fmt::runtime(fmt_spec), *v) : std::string("-");
}

// The phase's value at time t: the last sample at or before t.
std::optional<std::uint64_t> pages_at(const DedupPhaseResult& p, double t) {
  if (!p.ran() || p.timeline.empty() || p.timeline.front().t > t + 1e-9) {
    return p.ran() && !p.timeline.empty() ? std::optional<std::uint64_t>(0) : std::nullopt;
  }
  const auto it = std::upper_bound(p.timeline.begin(), p.timeline.end(), t + 1e-9,
                                   [](double x, const DedupSample& s) { return x < s.t; });
  return std::prev(it)->pages;
}

std::string verdict(bool met) {
  return met ? "met" : "missed";
}

nlohmann::json sample_json(const DedupSample& s) {
  return {{"t_s", s.t},         {"pages_saved", s.pages},     {"cpu_s", s.cpu_seconds},
          {"rounds", s.rounds}, {"pages_scanned", s.scanned}, {"rss_bytes", s.rss_bytes}};
}

nlohmann::json phase_json(const DedupPhaseResult& p) {
  nlohmann::json j{{"name", p.name}, {"ran", p.ran()}};
  if (!p.ran()) {
    j["skipped"] = p.skipped;
    return j;
  }
  j["steady"] = p.steady_time.has_value();
  if (p.steady_time) {
    j["steady_time_s"] = *p.steady_time;
    j["at_steady"] = sample_json(p.at_steady);
  }
  if (const auto e = p.pages_per_cpu_second()) j["pages_per_cpu_s"] = *e;
  j["last"] = sample_json(p.last);
  if (p.rss_filled != 0) {
    j["rss_before_fill_bytes"] = p.rss_before_fill;
    j["rss_filled_bytes"] = p.rss_filled;
  }
  j["notes"] = p.notes;
  return j;
}

}  // namespace

void print_dedup_report(std::ostream& out, const DedupBenchResult& r) {
  const DedupBenchConfig& c = r.config;
  const ContentMix& m = r.mix;
  const std::array<const DedupPhaseResult*, 3> phases{&r.real_ksm, &r.model_ksm, &r.pageone};
  out << fmt::format("memvirt bench dedup: {:.0f} MiB = {} pages in {} regions\n",
                     c.mix.total.mib(), m.pages.size(), c.mix.regions);
  out << fmt::format(
      "  content: {} pages of {} common contents, {} zero pages, {} rewritten every {} ms, {} "
      "unique\n",
      m.shared_pages, m.distinct_shared, m.zero_pages, m.rewritten.size(),
      c.rewrite_period.ns() / 1'000'000, m.unique_pages);
  out << fmt::format("  mergeable at most: {} pages ({:.1f} MiB)\n", m.mergeable_pages(),
                     Bytes::from_pages(m.mergeable_pages()).mib());
  out << fmt::format(
      "  KSM: pages_to_scan {}, sleep_millisecs {}, use_zero_pages {}, smart_scan {}, "
      "max_page_sharing {}\n",
      c.ksm.pages_to_scan, c.ksm.sleep_millisecs, c.ksm.use_zero_pages ? 1 : 0,
      c.ksm.smart_scan ? 1 : 0, c.ksm.max_page_sharing);
  out << fmt::format(
      "  PageONE: {} work threads, a pass every {:.3g} s, merges pages unchanged for {} periods\n",
      c.work_threads, c.merge_period.seconds(), c.stable_periods);
  out << fmt::format("  model costs: {}\n", r.cost_profile);
  out << fmt::format(
      "  steady state: pages saved within {:.3g}% (or {} pages) for {} samples {} ms apart\n\n",
      c.rule.tolerance * 100, c.rule.floor, c.rule.samples, c.sample_interval.ns() / 1'000'000);

  out << fmt::format("  {:<30}{:>14}{:>14}{:>14}\n", "", "Linux KSM", "KSM model", "PageONE");
  auto row = [&](const std::string& label, auto cell) {
    out << fmt::format("  {:<30}", label);
    for (const DedupPhaseResult* p : phases) {
      out << fmt::format("{:>14}", p->ran() ? cell(*p) : std::string("skipped"));
    }
    out << "\n";
  };
  auto steady_or = [](const DedupPhaseResult& p, auto f) {
    return p.steady_time ? f(p.at_steady) : std::string("no steady");
  };
  row("pages saved at steady state", [&](const DedupPhaseResult& p) {
    return steady_or(p, [](const DedupSample& s) { return fmt::format("{}", s.pages); });
  });
  row("time to steady state", [&](const DedupPhaseResult& p) {
    return steady_or(p, [](const DedupSample& s) { return fmt::format("{:.1f} s", s.t); });
  });
  row("CPU seconds to steady state", [&](const DedupPhaseResult& p) {
    return steady_or(p, [](const DedupSample& s) { return fmt::format("{:.3f}", s.cpu_seconds); });
  });
  row("pages per CPU-second",
      [&](const DedupPhaseResult& p) { return or_dash(p.pages_per_cpu_second(), "{:.0f}"); });
  row("full scans / passes to steady", [&](const DedupPhaseResult& p) {
    return steady_or(p, [](const DedupSample& s) { return fmt::format("{}", s.rounds); });
  });
  row("pages saved at the end",
      [&](const DedupPhaseResult& p) { return fmt::format("{}", p.last.pages); });
  row("CPU seconds at the end",
      [&](const DedupPhaseResult& p) { return fmt::format("{:.3f}", p.last.cpu_seconds); });
  row("CPU us per page scanned", [&](const DedupPhaseResult& p) {
    return p.last.scanned == 0 ? std::string("-")
                               : fmt::format("{:.2f}", p.last.cpu_seconds * 1e6 /
                                                           static_cast<double>(p.last.scanned));
  });
  if (r.pageone.ran() && r.pageone.rss_filled != 0) {
    const auto mib = [](std::uint64_t b) { return static_cast<double>(b) / (1 << 20); };
    out << fmt::format(
        "\n  PageONE process RSS: {:.1f} MiB before the fill, {:.1f} MiB filled, {:.1f} MiB at "
        "steady state ({:.1f} MiB given back)\n",
        mib(r.pageone.rss_before_fill), mib(r.pageone.rss_filled),
        mib(r.pageone.at_steady.rss_bytes),
        mib(r.pageone.rss_filled) - mib(r.pageone.at_steady.rss_bytes));
    out << "  (KSM's merged pages stay mapped, so its process RSS does not drop; KSM saves system\n"
           "  memory, counted by pages_sharing.)\n";
  }
  out << "\n";
  if (const auto e = r.efficiency_ratio()) {
    out << fmt::format(
        "  PageONE / Linux KSM, pages per CPU-second: {:.1f}x (target >= {:.0f}x: {})\n", *e,
        kEfficiencyTarget, verdict(*e >= kEfficiencyTarget));
  } else {
    out << "  PageONE / Linux KSM, pages per CPU-second: not measured (a phase was skipped or did "
           "not settle)\n";
  }
  if (const auto t = r.steady_time_ratio()) {
    out << fmt::format(
        "  KSM model / Linux KSM, time to steady state: {:.2f} (target within {:.0f}%: {})\n", *t,
        kSteadyTimeTolerance * 100, verdict(std::fabs(*t - 1) <= kSteadyTimeTolerance));
  } else {
    out << "  KSM model / Linux KSM, time to steady state: not measured\n";
  }
  for (const DedupPhaseResult* p : phases) {
    if (!p->ran()) out << fmt::format("  {} skipped: {}\n", p->name, p->skipped);
    for (const std::string& n : p->notes) out << fmt::format("  {}: {}\n", p->name, n);
  }

  // The timelines side by side, about 20 rows.
  double end = 0;
  for (const DedupPhaseResult* p : phases) {
    if (p->ran() && !p->timeline.empty()) end = std::max(end, p->timeline.back().t);
  }
  if (end <= 0) return;
  const double step =
      std::max(c.sample_interval.seconds(),
               std::ceil(end / 20 / c.sample_interval.seconds()) * c.sample_interval.seconds());
  out << fmt::format("\n  pages saved over time\n  {:>8}{:>14}{:>14}{:>14}\n", "t (s)", "Linux KSM",
                     "KSM model", "PageONE");
  for (double t = step; t <= end + step / 2; t += step) {
    out << fmt::format("  {:>8.1f}", t);
    for (const DedupPhaseResult* p : phases) {
      const auto v = pages_at(*p, t);
      const bool over = p->ran() && !p->timeline.empty() && t > p->timeline.back().t + 1e-9;
      out << fmt::format("{:>14}", !v     ? std::string("")
                                   : over ? std::string("")
                                          : fmt::format("{}", *v));
    }
    out << "\n";
  }
}

nlohmann::json dedup_json(const DedupBenchResult& r) {
  const DedupBenchConfig& c = r.config;
  nlohmann::json j;
  j["config"] = {{"size_bytes", c.mix.total.value()},
                 {"regions", c.mix.regions},
                 {"shared", c.mix.shared},
                 {"zero", c.mix.zero},
                 {"rewritten", c.mix.rewritten},
                 {"seed", c.mix.seed},
                 {"rewrite_period_ms", c.rewrite_period.ns() / 1'000'000},
                 {"ksm",
                  {{"pages_to_scan", c.ksm.pages_to_scan},
                   {"sleep_millisecs", c.ksm.sleep_millisecs},
                   {"use_zero_pages", c.ksm.use_zero_pages},
                   {"smart_scan", c.ksm.smart_scan},
                   {"max_page_sharing", c.ksm.max_page_sharing}}},
                 {"pageone",
                  {{"work_threads", c.work_threads},
                   {"merge_period_s", c.merge_period.seconds()},
                   {"stable_periods", c.stable_periods}}},
                 {"sample_interval_ms", c.sample_interval.ns() / 1'000'000},
                 {"steady_state",
                  {{"tolerance", c.rule.tolerance},
                   {"floor_pages", c.rule.floor},
                   {"samples", c.rule.samples}}},
                 {"timeout_s", c.timeout.seconds()},
                 {"cost_profile", r.cost_profile}};
  j["content"] = {{"pages", r.mix.pages.size()},
                  {"shared_pages", r.mix.shared_pages},
                  {"distinct_shared", r.mix.distinct_shared},
                  {"zero_pages", r.mix.zero_pages},
                  {"rewritten_pages", r.mix.rewritten.size()},
                  {"unique_pages", r.mix.unique_pages},
                  {"mergeable_pages", r.mix.mergeable_pages()}};
  j["phases"] = {phase_json(r.real_ksm), phase_json(r.model_ksm), phase_json(r.pageone)};
  if (const auto e = r.efficiency_ratio()) {
    j["pageone_vs_ksm_pages_per_cpu_s"] = *e;
    j["target_efficiency_met"] = *e >= kEfficiencyTarget;
  }
  if (const auto t = r.steady_time_ratio()) {
    j["model_vs_real_steady_time"] = *t;
    j["target_steady_time_met"] = std::fabs(*t - 1) <= kSteadyTimeTolerance;
  }
  return j;
}

void write_dedup_outputs(const std::string& dir, const DedupBenchResult& r) {
  const OutputDir out(dir);
  out.write("results.json", [&](std::ostream& f) { f << dedup_json(r).dump(2) << "\n"; });
  out.write("timeline.csv", [&](std::ostream& csv) {
    csv << "phase,t_s,pages_saved,cpu_s,rounds,pages_scanned,rss_bytes\n";
    for (const DedupPhaseResult* p : {&r.real_ksm, &r.model_ksm, &r.pageone}) {
      for (const DedupSample& s : p->timeline) {
        csv << fmt::format("{},{:.3f},{},{:.4f},{},{},{}\n", p->name, s.t, s.pages, s.cpu_seconds,
                           s.rounds, s.scanned, s.rss_bytes);
      }
    }
  });
}

}  // namespace memvirt
