#include "report/report.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "scenario/replicates.hpp"

namespace memvirt {

namespace {

using nlohmann::json;

// What one run measured: the sections of results.json that replicates aggregate.
json measured_json(const RunResult& run) {
  json j;
  j["host_memory_gib"] = {{"min", run.host_min_gib},
                          {"avg", run.host_avg_gib},
                          {"max", run.host_max_gib},
                          {"peak_whole_run", run.host_peak_gib}};
  json cpu = json::object();
  json cpu_detail = json::object();
  for (const auto& a : run.cpu) {
    cpu[a.name] = a.cpu_percent;
    cpu_detail[a.name] = {{"threads", a.threads}, {"cpu_seconds", a.cpu_seconds}};
  }
  j["cpu_percent"] = cpu;
  j["cpu_accounts"] = cpu_detail;
  j["run"] = {{"vms_launched", run.vms},
              {"vms_killed_by_host_oom", run.vms_killed},
              {"vms_refused_by_policy", run.vms_refused},
              {"guest_oom_kills", run.guest_oom_kills},
              {"workloads_killed", run.workloads_killed},
              {"vms_completed", run.vms_completed},
              {"workload_cycles", run.workload_cycles},
              {"work_s", run.work_s},
              {"workload_ops_per_s", run.workload_ops_per_s},
              {"exceeded_budget", run.exceeded},
              {"exceeded_at_s", run.exceeded_at_s},
              {"touched_gib", static_cast<double>(run.touched_pages) * kPageSize / (1ULL << 30)},
              {"events", run.events},
              {"sectors_read", run.sectors_read},
              {"sectors_written", run.sectors_written},
              {"pswpin", run.pswpin},
              {"pswpout", run.pswpout},
              {"major_faults", run.major_faults},
              {"refaults", run.refaults},
              {"memory_stall_s", run.memory_stall_s},
              {"vcpu_seconds", run.vcpu_seconds},
              {"host_cpu_seconds", run.host_cpu_seconds},
              {"simulated_s", run.simulated_s}};
  if (run.completion_s) j["run"]["completion_s"] = *run.completion_s;
  if (run.tmem) {
    j["tmem"] = {{"pages_max", run.tmem->pages_max},
                 {"apparent_pages_max", run.tmem->apparent_pages_max},
                 {"frontswap_pages_end", run.tmem->frontswap_pages_end},
                 {"frontswap_pages_max", run.tmem->frontswap_pages_max}};
  }
  if (run.zswap) {
    const RunResult::Zswap& z = *run.zswap;
    j["zswap"] = {{"stored_pages_end", z.stored_pages_end},
                  {"stored_pages_max", z.stored_pages_max},
                  {"pool_pages_end", z.pool_pages_end},
                  {"pool_pages_max", z.pool_pages_max},
                  {"same_filled_pages_end", z.same_filled_pages_end},
                  {"written_back_pages", z.written_back_pages}};
  }
  return j;
}

constexpr const char* kMeasuredSections =
    "host_memory_gib, cpu_percent, cpu_accounts, run, tmem and zswap";

// The replicates' measured values combined, place by place.
struct Aggregated {
  json values;
  std::vector<std::string> missing;    // not in every replicate: left out of `values`
  std::vector<std::string> differing;  // not numbers, and not the same in every replicate: null
};

// The aggregate of the same place in every replicate's tree (`in`, at least one): a number is
// aggregated (a real number, whatever its type in the runs), objects and arrays place by place,
// anything else kept when every replicate has the same.
json aggregate_place(const std::vector<const json*>& in, Aggregate how, const std::string& path,
                     Aggregated& out) {
  const auto all = [&](auto pred) {
    return std::all_of(in.begin(), in.end(), [&](const json* j) { return pred(*j); });
  };
  if (all([](const json& j) { return j.is_object(); })) {
    std::set<std::string> keys;
    for (const json* j : in) {
      for (auto it = j->begin(); it != j->end(); ++it) keys.insert(it.key());
    }
    json o = json::object();
    for (const std::string& k : keys) {
      const std::string p = path.empty() ? k : fmt::format("{}.{}", path, k);
      std::vector<const json*> sub;
      sub.reserve(in.size());
      for (const json* j : in) {
        if (j->contains(k)) sub.push_back(&(*j)[k]);
      }
      if (sub.size() < in.size()) {
        out.missing.push_back(p);
        continue;
      }
      o[k] = aggregate_place(sub, how, p, out);
    }
    return o;
  }
  const std::size_t size = in.front()->size();
  if (all([&](const json& j) { return j.is_array() && j.size() == size; })) {
    json a = json::array();
    for (std::size_t i = 0; i < size; ++i) {
      std::vector<const json*> sub;
      sub.reserve(in.size());
      for (const json* j : in) sub.push_back(&(*j)[i]);
      a.push_back(aggregate_place(sub, how, fmt::format("{}[{}]", path, i), out));
    }
    return a;
  }
  if (all([](const json& j) { return j.is_number(); })) {
    std::vector<double> v;
    v.reserve(in.size());
    for (const json* j : in) v.push_back(j->get<double>());
    return aggregate(v, how);
  }
  if (all([&](const json& j) { return j == *in.front(); })) return *in.front();
  out.differing.push_back(path);
  return nullptr;
}

Aggregated aggregate_replicates(const ExperimentResult& r) {
  std::vector<json> trees;
  trees.reserve(r.replicates.size());
  for (const Replicate& rep : r.replicates) trees.push_back(measured_json(rep.run));
  std::vector<const json*> in;
  in.reserve(trees.size());
  for (const json& t : trees) in.push_back(&t);
  Aggregated a;
  a.values = aggregate_place(in, r.aggregate, "", a);
  return a;
}

// "the mean of the middle 3 of 5 runs" or "the mean of 5 runs".
std::string aggregate_phrase(const ExperimentResult& r) {
  const std::size_t n = r.replicates.size();
  if (r.aggregate == Aggregate::kTrimmedMean) {
    return fmt::format("the mean of the middle {} of {} runs", n - 2, n);
  }
  return fmt::format("the mean of {} runs", n);
}

// The measured values a summary or results.json reports: the run's, or the replicates'
// aggregate.
json reported_values(const ExperimentResult& r) {
  return r.replicates.empty() ? measured_json(r.run) : aggregate_replicates(r).values;
}

// `section[key]`, or null when it has none (a place not in every replicate).
const json& field(const json& section, const char* key) {
  static const json kNone;
  const auto it = section.find(key);
  return it == section.end() ? kNone : *it;
}

// A count as measured (an integer) or as aggregated (a real number, shown to one decimal
// unless it is whole); "-" when there is none.
std::string count_text(const json& v) {
  if (!v.is_number()) return "-";
  if (v.is_number_integer()) return v.dump();
  const double d = v.get<double>();
  return d == std::floor(d) ? fmt::format("{:.0f}", d) : fmt::format("{:.1f}", d);
}

}  // namespace

nlohmann::json results_json(const Scenario& s, const ExperimentResult& r) {
  json j;
  j["scenario"] = s.name;
  j["experiment"] = r.type;
  j["vms"] = r.vms;
  j["seed"] = s.seed;
  j["duration_s"] = s.experiment.duration.seconds();
  j["warmup_s"] = s.experiment.warmup.seconds();
  if (r.budget_gib) j["budget_gib"] = *r.budget_gib;
  if (r.max_slowdown) j["max_slowdown"] = *r.max_slowdown;
  if (r.baseline) {
    j["slowdown"] = r.slowdown ? json(*r.slowdown) : json(nullptr);
    j["baseline"] = {{"host_memory_gib_avg", r.baseline->host_avg_gib},
                     {"workload_ops_per_s", r.baseline->workload_ops_per_s},
                     {"memory_stall_s", r.baseline->memory_stall_s},
                     {"major_faults", r.baseline->major_faults}};
    if (r.baseline->completion_s) j["baseline"]["completion_s"] = *r.baseline->completion_s;
  }
  if (r.search) {
    json trials = json::array();
    for (const auto& t : *r.search) {
      json trial = {{"vms", t.vms},
                    {"fits", t.fits},
                    {"peak_gib", t.peak_gib},
                    {"exceeded_at_s", t.exceeded_at_s}};
      if (r.max_slowdown) {
        trial["slowdown"] = t.slowdown ? json(*t.slowdown) : json(nullptr);
        trial["why_not"] = t.why_not;
      }
      trials.push_back(trial);
    }
    j["search"] = trials;
  }
  json measured;
  if (r.replicates.empty()) {
    measured = measured_json(r.run);
  } else {
    Aggregated a = aggregate_replicates(r);
    measured = std::move(a.values);
    json seeds = json::array();
    json replicates = json::array();
    for (const Replicate& rep : r.replicates) {
      seeds.push_back(rep.seed);
      json one = measured_json(rep.run);
      one["seed"] = rep.seed;
      replicates.push_back(std::move(one));
    }
    const std::size_t n = r.replicates.size();
    json agg = {
        {"replicates", n},
        {"method", spelling_of(kAggregateSpellings, r.aggregate)},
        {"seeds", seeds},
        {"computed",
         fmt::format("each number under {} is {} ({}), each number separately; every run's "
                     "own values are under `replicates`; timeseries.csv and `stats` are run "
                     "0's (seed {})",
                     kMeasuredSections, aggregate_phrase(r),
                     r.aggregate == Aggregate::kTrimmedMean
                         ? "its highest and its lowest value dropped, the rest averaged"
                         : "the values averaged",
                     r.replicates.front().seed)}};
    if (!a.missing.empty()) agg["not_in_every_replicate"] = a.missing;
    if (!a.differing.empty()) agg["differing"] = a.differing;
    j["aggregate"] = std::move(agg);
    j["replicates"] = std::move(replicates);
  }
  for (auto it = measured.begin(); it != measured.end(); ++it) j[it.key()] = it.value();
  if (!r.run.stats.empty()) j["stats"] = r.run.stats;
  if (s.reference.vms || s.reference.host_memory_gib_avg) {
    json ref = {{"source", s.reference.source}};
    if (s.reference.vms) ref["vms"] = *s.reference.vms;
    if (s.reference.host_memory_gib_avg)
      ref["host_memory_gib_avg"] = *s.reference.host_memory_gib_avg;
    j["reference"] = ref;
  }
  return j;
}

void write_outputs(const std::string& dir, const Scenario& s, const ExperimentResult& r) {
  const OutputDir out(dir);
  out.write_config(s.effective, s.file);
  out.write("results.json", [&](std::ostream& f) { f << results_json(s, r).dump(2) << "\n"; });
  out.write("timeseries.csv", [&](std::ostream& f) { write_timeseries_csv(r.run.series, f); });
}

void print_summary(std::ostream& out, const Scenario& s, const ExperimentResult& r) {
  fmt::print(out, "\n{} ({} experiment, seed {})\n", s.name, r.type, s.seed);
  if (!s.description.empty()) fmt::print(out, "  {}\n", s.description);
  if (r.search && r.max_slowdown) {
    fmt::print(out, "  {:<34} {}\n",
               fmt::format("VMs carried within {:+.0f}%:", 100 * *r.max_slowdown), r.vms);
    std::string trials;
    for (const auto& t : *r.search) trials += fmt::format(" {}{}", t.vms, t.fits ? "✓" : "✗");
    fmt::print(out, "  {:<34}{}\n", "search (VMs, carried):", trials);
  } else if (r.search) {
    fmt::print(out, "  {:<34} {}",
               fmt::format("VMs that fit in {:.0f} GiB:", r.budget_gib.value_or(0)), r.vms);
    if (s.reference.vms)
      fmt::print(out, "   (reference: {:.0f}, {})", *s.reference.vms, s.reference.source);
    fmt::print(out, "\n");
    std::string trials;
    for (const auto& t : *r.search) trials += fmt::format(" {}{}", t.vms, t.fits ? "✓" : "✗");
    fmt::print(out, "  {:<34}{}\n", "search (VMs, fits):", trials);
  } else if (r.launched_one_by_one) {
    fmt::print(out, "  {:<34} {}",
               fmt::format("VMs launched one by one in {:.1f} GiB:", r.budget_gib.value_or(0)),
               r.vms);
    if (s.reference.vms)
      fmt::print(out, "   (reference: {:.0f}, {})", *s.reference.vms, s.reference.source);
    fmt::print(out, "\n");
    if (r.run.exceeded) {
      fmt::print(out, "  {:<34} VM {} at {:.0f} s\n", "host memory ran out:", r.run.vms,
                 r.run.exceeded_at_s);
    }
  } else {
    fmt::print(out, "  {:<34} {}\n", "VMs:", r.vms);
  }
  // The numbers below are the run's, or the replicates' aggregate (as in results.json).
  const json m = reported_values(r);
  const json& run = field(m, "run");
  const auto num = [](const json& section, const char* key) {
    const json& v = field(section, key);
    return v.is_number() ? v.get<double>() : 0.0;
  };
  if (!r.replicates.empty()) {
    fmt::print(out, "  {:<34} {}, each number separately\n", "replicates:", aggregate_phrase(r));
  }
  const json& ops = field(run, "workload_ops_per_s");
  for (std::size_t w = 0; w < ops.size(); ++w) {
    if (ops[w].get<double>() <= 0) continue;
    fmt::print(out, "  {:<34} {:.0f}\n", fmt::format("workload {} operations/s:", w),
               ops[w].get<double>());
  }
  const json& host = field(m, "host_memory_gib");
  fmt::print(out, "  {:<34} min {:.1f}  avg {:.1f}  max {:.1f}",
             "host memory GiB (after warmup):", num(host, "min"), num(host, "avg"),
             num(host, "max"));
  if (s.reference.host_memory_gib_avg) {
    fmt::print(out, "   (reference avg: {:.0f})", *s.reference.host_memory_gib_avg);
  }
  fmt::print(out, "\n");
  fmt::print(out, "  {:<34} {:.1f} GiB over {} VMs\n",
             "guest memory touched:", num(run, "touched_gib"),
             count_text(field(run, "vms_launched")));
  if (run.contains("completion_s")) {
    fmt::print(out, "  {:<34} {:.1f} s\n", "workloads completed at:", num(run, "completion_s"));
  } else if (!r.replicates.empty()) {
    const auto completed = std::count_if(r.replicates.begin(), r.replicates.end(),
                                         [](const Replicate& x) { return x.run.completion_s; });
    if (completed > 0) {
      fmt::print(out, "  {:<34} in {} of {} runs only (see below)\n",
                 "workloads completed:", completed, r.replicates.size());
    }
  }
  if (r.baseline) {
    if (r.slowdown) {
      fmt::print(out, "  {:<34} {:+.1f}% against an unconstrained host\n",
                 "slowdown:", 100 * *r.slowdown);
    } else {
      fmt::print(out, "  {:<34} none measurable (no completion or operation rate)\n", "slowdown:");
    }
  }
  fmt::print(out, "  {:<34} {:.1f} s (host threads {:.1f} s)\n",
             "vCPU time:", num(run, "vcpu_seconds"), num(run, "host_cpu_seconds"));
  if (num(run, "sectors_read") + num(run, "sectors_written") > 0) {
    fmt::print(out, "  {:<34} {} read, {} written\n",
               "guest disk sectors:", count_text(field(run, "sectors_read")),
               count_text(field(run, "sectors_written")));
    fmt::print(out, "  {:<34} {} major faults, {} refaults\n",
               "guest page faults:", count_text(field(run, "major_faults")),
               count_text(field(run, "refaults")));
  }
  if (num(run, "pswpin") + num(run, "pswpout") > 0) {
    fmt::print(out, "  {:<34} {} pages in, {} out\n",
               "swap disk:", count_text(field(run, "pswpin")), count_text(field(run, "pswpout")));
  }
  if (m.contains("zswap")) {
    const json& z = field(m, "zswap");
    fmt::print(out,
               "  {:<34} {} stored at the end ({} max), pool {} pages ({} max), {} same-filled, "
               "{} written back\n",
               "zswap:", count_text(field(z, "stored_pages_end")),
               count_text(field(z, "stored_pages_max")), count_text(field(z, "pool_pages_end")),
               count_text(field(z, "pool_pages_max")),
               count_text(field(z, "same_filled_pages_end")),
               count_text(field(z, "written_back_pages")));
  }
  if (m.contains("tmem")) {
    const json& t = field(m, "tmem");
    fmt::print(
        out, "  {:<34} {} pages max, {} held max; frontswap {} at the end, {} max\n",
        "tmem:", count_text(field(t, "pages_max")), count_text(field(t, "apparent_pages_max")),
        count_text(field(t, "frontswap_pages_end")), count_text(field(t, "frontswap_pages_max")));
  }
  // In the order the accounts were made, not the JSON's.
  const json& cpu = field(m, "cpu_percent");
  const json& accounts = field(m, "cpu_accounts");
  for (const auto& a : r.run.cpu) {
    if (!cpu.contains(a.name) || !accounts.contains(a.name)) continue;
    const json& threads = accounts[a.name]["threads"];
    fmt::print(out, "  {:<34} {:.3f}% of a core{}\n", fmt::format("CPU {}:", a.name),
               cpu[a.name].get<double>(),
               threads.get<double>() > 1
                   ? fmt::format(" per thread ({} threads)", count_text(threads))
                   : "");
  }
  if (num(run, "vms_killed_by_host_oom") > 0 || num(run, "guest_oom_kills") > 0 ||
      num(run, "workloads_killed") > 0) {
    fmt::print(out, "  {:<34} host OOM {}  guest OOM {}  workloads ended early {}\n",
               "kills:", count_text(field(run, "vms_killed_by_host_oom")),
               count_text(field(run, "guest_oom_kills")),
               count_text(field(run, "workloads_killed")));
  }
  for (std::size_t i = 0; i < r.replicates.size(); ++i) {
    const Replicate& rep = r.replicates[i];
    fmt::print(out, "  {:<34} {}, {} sectors read\n", fmt::format("run {} (seed {}):", i, rep.seed),
               rep.run.completion_s ? fmt::format("completed at {:.1f} s", *rep.run.completion_s)
                                    : std::string("not completed"),
               rep.run.sectors_read);
  }
}

}  // namespace memvirt
