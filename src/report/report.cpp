#include "report/report.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <filesystem>
#include <fstream>

namespace memvirt {

nlohmann::json results_json(const Scenario& s, const ExperimentResult& r) {
  using nlohmann::json;
  json j;
  j["scenario"] = s.name;
  j["experiment"] = r.type;
  j["vms"] = r.vms;
  j["seed"] = s.seed;
  j["duration_s"] = s.experiment.duration.seconds();
  j["warmup_s"] = s.experiment.warmup.seconds();
  j["host_memory_gib"] = {{"min", r.run.host_min_gib},
                          {"avg", r.run.host_avg_gib},
                          {"max", r.run.host_max_gib},
                          {"peak_whole_run", r.run.host_peak_gib}};
  json cpu = json::object();
  json cpu_detail = json::object();
  for (const auto& a : r.run.cpu) {
    cpu[a.name] = a.cpu_percent;
    cpu_detail[a.name] = {{"threads", a.threads}, {"cpu_seconds", a.cpu_seconds}};
  }
  j["cpu_percent"] = cpu;
  j["cpu_accounts"] = cpu_detail;
  if (r.budget_gib) j["budget_gib"] = *r.budget_gib;
  if (r.search) {
    json trials = json::array();
    for (const auto& t : *r.search) {
      trials.push_back({{"vms", t.vms},
                        {"fits", t.fits},
                        {"peak_gib", t.peak_gib},
                        {"exceeded_at_s", t.exceeded_at_s}});
    }
    j["search"] = trials;
  }
  j["run"] = {{"vms_launched", r.run.vms},
              {"vms_killed_by_host_oom", r.run.vms_killed},
              {"guest_oom_kills", r.run.guest_oom_kills},
              {"vms_completed", r.run.vms_completed},
              {"workload_cycles", r.run.workload_cycles},
              {"workload_ops_per_s", r.run.workload_ops_per_s},
              {"exceeded_budget", r.run.exceeded},
              {"exceeded_at_s", r.run.exceeded_at_s},
              {"touched_gib", static_cast<double>(r.run.touched_pages) * kPageSize / (1ULL << 30)},
              {"events", r.run.events},
              {"sectors_read", r.run.sectors_read},
              {"sectors_written", r.run.sectors_written},
              {"pswpin", r.run.pswpin},
              {"pswpout", r.run.pswpout},
              {"major_faults", r.run.major_faults},
              {"refaults", r.run.refaults},
              {"vcpu_seconds", r.run.vcpu_seconds},
              {"host_cpu_seconds", r.run.host_cpu_seconds},
              {"simulated_s", r.run.simulated_s}};
  if (r.run.completion_s) j["run"]["completion_s"] = *r.run.completion_s;
  if (r.run.tmem) {
    j["tmem"] = {{"pages_max", r.run.tmem->pages_max},
                 {"apparent_pages_max", r.run.tmem->apparent_pages_max},
                 {"frontswap_pages_end", r.run.tmem->frontswap_pages_end},
                 {"frontswap_pages_max", r.run.tmem->frontswap_pages_max}};
  }
  if (r.run.zswap) {
    const RunResult::Zswap& z = *r.run.zswap;
    j["zswap"] = {{"stored_pages_end", z.stored_pages_end},
                  {"stored_pages_max", z.stored_pages_max},
                  {"pool_pages_end", z.pool_pages_end},
                  {"pool_pages_max", z.pool_pages_max},
                  {"same_filled_pages_end", z.same_filled_pages_end},
                  {"written_back_pages", z.written_back_pages}};
  }
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
  if (r.search) {
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
  for (std::size_t w = 0; w < r.run.workload_ops_per_s.size(); ++w) {
    if (r.run.workload_ops_per_s[w] <= 0) continue;
    fmt::print(out, "  {:<34} {:.0f}\n", fmt::format("workload {} operations/s:", w),
               r.run.workload_ops_per_s[w]);
  }
  fmt::print(out, "  {:<34} min {:.1f}  avg {:.1f}  max {:.1f}",
             "host memory GiB (after warmup):", r.run.host_min_gib, r.run.host_avg_gib,
             r.run.host_max_gib);
  if (s.reference.host_memory_gib_avg) {
    fmt::print(out, "   (reference avg: {:.0f})", *s.reference.host_memory_gib_avg);
  }
  fmt::print(out, "\n");
  fmt::print(out, "  {:<34} {:.1f} GiB over {} VMs\n", "guest memory touched:",
             static_cast<double>(r.run.touched_pages) * kPageSize / (1ULL << 30), r.run.vms);
  if (r.run.completion_s) {
    fmt::print(out, "  {:<34} {:.1f} s\n", "workloads completed at:", *r.run.completion_s);
  }
  fmt::print(out, "  {:<34} {:.1f} s (host threads {:.1f} s)\n", "vCPU time:", r.run.vcpu_seconds,
             r.run.host_cpu_seconds);
  if (r.run.sectors_read + r.run.sectors_written > 0) {
    fmt::print(out, "  {:<34} {} read, {} written\n", "guest disk sectors:", r.run.sectors_read,
               r.run.sectors_written);
    fmt::print(out, "  {:<34} {} major faults, {} refaults\n",
               "guest page faults:", r.run.major_faults, r.run.refaults);
  }
  if (r.run.pswpin + r.run.pswpout > 0) {
    fmt::print(out, "  {:<34} {} pages in, {} out\n", "swap disk:", r.run.pswpin, r.run.pswpout);
  }
  if (r.run.zswap) {
    const RunResult::Zswap& z = *r.run.zswap;
    fmt::print(out,
               "  {:<34} {} stored at the end ({} max), pool {} pages ({} max), {} same-filled, "
               "{} written back\n",
               "zswap:", z.stored_pages_end, z.stored_pages_max, z.pool_pages_end, z.pool_pages_max,
               z.same_filled_pages_end, z.written_back_pages);
  }
  if (r.run.tmem) {
    fmt::print(out, "  {:<34} {} pages max, {} held max; frontswap {} at the end, {} max\n",
               "tmem:", r.run.tmem->pages_max, r.run.tmem->apparent_pages_max,
               r.run.tmem->frontswap_pages_end, r.run.tmem->frontswap_pages_max);
  }
  for (const auto& a : r.run.cpu) {
    fmt::print(out, "  {:<34} {:.3f}% of a core{}\n", fmt::format("CPU {}:", a.name), a.cpu_percent,
               a.threads > 1 ? fmt::format(" per thread ({} threads)", a.threads) : "");
  }
  if (r.run.vms_killed > 0 || r.run.guest_oom_kills > 0) {
    fmt::print(out, "  {:<34} host OOM {}  guest OOM {}\n", "kills:", r.run.vms_killed,
               r.run.guest_oom_kills);
  }
}

}  // namespace memvirt
