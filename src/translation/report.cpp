#include "translation/report.hpp"

#include <fmt/format.h>

#include <cmath>

#include "translation/linear_model.hpp"

namespace memvirt::translation {

namespace {

double div(double a, double b) {
  return b != 0 ? a / b : 0;
}

const ConfigResult* native_of(const WorkloadResult& w, const ConfigResult& c) {
  for (const auto& o : w.configs) {
    if (o.spec->mode == Mode::kBaseNative && o.spec->guest_pages == c.spec->guest_pages) return &o;
  }
  return nullptr;
}

double cycles_per_miss(const ConfigResult& c) {
  return div(static_cast<double>(c.stats.walk_cycles), static_cast<double>(c.stats.walks));
}

double run_cycles(const WorkloadResult& w, const ConfigResult& c) {
  return static_cast<double>(c.stats.references) * w.base_cycles_per_reference +
         static_cast<double>(c.stats.walk_cycles);
}

// Geometric mean over workloads of a positive per-workload value; 0 if none.
template <typename F>
double geomean(const std::vector<WorkloadResult>& r, std::size_t config, F value) {
  double log_sum = 0;
  int n = 0;
  for (const auto& w : r) {
    const double v = value(w, w.configs[config]);
    if (v > 0) {
      log_sum += std::log(v);
      ++n;
    }
  }
  return n ? std::exp(log_sum / n) : 0;
}

nlohmann::ordered_json yaml_to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (auto it : n) j[it.first.as<std::string>()] = yaml_to_json(it.second);
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (auto it : n) j.push_back(yaml_to_json(it));
    return j;
  }
  if (n.IsScalar()) {
    const std::string s = n.Scalar();
    try {
      std::size_t used = 0;
      const double d = std::stod(s, &used);
      if (used == s.size()) return d;
    } catch (...) {
    }
    return s;
  }
  return nullptr;
}

}  // namespace

DerivedMetrics derive(const WorkloadResult& w, const ConfigResult& c) {
  DerivedMetrics m;
  const auto refs = static_cast<double>(c.stats.references);
  m.misses_per_kiloref = div(1000.0 * static_cast<double>(c.stats.walks), refs);
  m.l1_misses_per_kiloref = div(1000.0 * static_cast<double>(c.stats.l1_misses), refs);
  m.cycles_per_miss = cycles_per_miss(c);
  m.refs_per_miss = div(static_cast<double>(c.stats.walk_refs), static_cast<double>(c.stats.walks));
  m.overhead_share = div(static_cast<double>(c.stats.walk_cycles), run_cycles(w, c));
  m.walk_cycles_per_kiloref = div(1000.0 * static_cast<double>(c.stats.walk_cycles), refs);
  if (const ConfigResult* n = native_of(w, c)) {
    m.ratio_to_native = div(m.cycles_per_miss, cycles_per_miss(*n));
  }
  return m;
}

std::optional<double> escape_filter_overhead(const WorkloadResult& w, const ConfigResult& c) {
  if (!c.spec->escape_filter) return std::nullopt;
  for (const auto& o : w.configs) {
    if (!o.spec->escape_filter && o.spec->mode == c.spec->mode &&
        o.spec->guest_pages == c.spec->guest_pages && o.spec->host_pages == c.spec->host_pages) {
      return div(
          static_cast<double>(c.stats.walk_cycles) - static_cast<double>(o.stats.walk_cycles),
          run_cycles(w, o));
    }
  }
  return std::nullopt;
}

nlohmann::ordered_json translation_results_json(const TranslationScenario& s,
                                                const std::vector<WorkloadResult>& r) {
  using J = nlohmann::ordered_json;
  J j;
  j["experiment"] = "translation";
  j["scenario"] = s.name;
  j["seed"] = s.seed;
  j["references_per_workload"] = s.references;
  j["warmup_references"] = s.warmup;
  J workloads = J::array();
  for (const auto& w : r) {
    J jw;
    jw["name"] = w.name;
    jw["description"] = w.description;
    jw["footprint_bytes"] = w.footprint;
    jw["guest_memory_bytes"] = w.guest_memory;
    jw["largest_free_run_bytes"] = w.largest_free_run;
    jw["primary_region_in_guest_segment"] = w.primary_in_segment;
    jw["escaped_pages"] = w.escaped_pages;
    jw["base_cycles_per_reference"] = w.base_cycles_per_reference;
    J configs = J::array();
    for (const auto& c : w.configs) {
      const DerivedMetrics m = derive(w, c);
      const auto& st = c.stats;
      J jc;
      jc["name"] = c.spec->name;
      jc["mode"] = kModeNames[static_cast<std::size_t>(c.spec->mode)];
      jc["guest_pages"] = page_size_name(c.spec->guest_pages);
      jc["host_pages"] = page_size_name(c.spec->host_pages);
      jc["escape_filter"] = c.spec->escape_filter;
      jc["primary_region_in_guest_segment"] = c.primary_in_segment;
      jc["largest_free_run_bytes"] = c.largest_free_run;
      jc["vmm_segment_bytes"] = c.vmm_segment_bytes;
      const double walks0 = static_cast<double>(c.stats.walks);
      jc["share_of_walks_in_guest_segment"] =
          div(static_cast<double>(c.stats.walks_in_guest_segment), walks0);
      jc["share_of_walks_in_vmm_segment"] =
          div(static_cast<double>(c.stats.walks_in_vmm_segment), walks0);
      jc["misses_per_kiloref"] = m.misses_per_kiloref;
      jc["l1_misses_per_kiloref"] = m.l1_misses_per_kiloref;
      jc["cycles_per_miss"] = m.cycles_per_miss;
      jc["memory_refs_per_miss"] = m.refs_per_miss;
      jc["ratio_to_native"] = m.ratio_to_native;
      jc["overhead_share"] = m.overhead_share;
      J counts;
      counts["references"] = st.references;
      counts["l1_misses"] = st.l1_misses;
      counts["l2_hits"] = st.l2_hits;
      counts["segment_translations"] = st.segment_translations;
      counts["walks"] = st.walks;
      counts["walk_refs"] = st.walk_refs;
      counts["guest_refs"] = st.guest_refs;
      counts["nested_refs"] = st.nested_refs;
      counts["walk_cycles"] = st.walk_cycles;
      counts["nested_tlb_hits"] = st.nested_tlb_hits;
      counts["walk_cache_hits"] = st.walk_cache_hits;
      counts["segment_adds"] = st.segment_adds;
      counts["walks_in_guest_segment"] = st.walks_in_guest_segment;
      counts["walks_in_vmm_segment"] = st.walks_in_vmm_segment;
      counts["walks_in_both_segments"] = st.walks_in_both_segments;
      counts["escapes"] = st.escapes;
      counts["false_positives"] = st.false_positives;
      counts["walks_by_memory_refs"] = st.walks_by_refs;
      jc["counts"] = counts;
      J lm;
      lm["simulated_walk_cycles"] = st.walk_cycles;
      if (c.linear_model_cycles) {
        lm["linear_model_walk_cycles"] = *c.linear_model_cycles;
        lm["model_over_simulation"] =
            div(*c.linear_model_cycles, static_cast<double>(st.walk_cycles));
      } else {
        lm["linear_model_walk_cycles"] = nullptr;
      }
      jc["models"] = lm;
      if (auto e = escape_filter_overhead(w, c)) jc["escape_filter_overhead_share"] = *e;
      if (c.compaction) {
        const HostCompactionStats& hc = *c.compaction;
        J jh;
        jh["degraded_time_share"] = hc.degraded_share();
        jh["degraded_reference_share"] =
            div(static_cast<double>(c.degraded_references), static_cast<double>(st.references));
        jh["degraded_l1_miss_share"] =
            div(static_cast<double>(c.degraded_l1_misses), static_cast<double>(st.l1_misses));
        jh["degraded_walk_share"] =
            div(static_cast<double>(c.degraded_walks), static_cast<double>(st.walks));
        jh["fragmentation_events"] = hc.fragmentation_events;
        jh["pages_placed"] = hc.pages_placed;
        jh["pages_migrated"] = hc.pages_migrated;
        jh["segment_builds"] = hc.segment_builds;
        jh["daemon_cpu_share"] = hc.daemon_cpu_share();
        jh["horizon_s"] = hc.horizon_ns / 1e9;
        jc["host_compaction"] = jh;
      }
      configs.push_back(jc);
    }
    jw["configurations"] = configs;
    workloads.push_back(jw);
  }
  j["workloads"] = workloads;
  // Across workloads: geometric means of the per-miss ratio and of the overhead.
  J summary = J::array();
  for (std::size_t ci = 0; ci < s.configs.size(); ++ci) {
    J row;
    row["name"] = s.configs[ci].name;
    row["cycles_per_miss_ratio_geomean"] =
        geomean(r, ci, [](const auto& w, const auto& c) { return derive(w, c).ratio_to_native; });
    double max_overhead = 0;
    std::optional<double> max_escape;
    for (const auto& w : r) {
      max_overhead = std::max(max_overhead, derive(w, w.configs[ci]).overhead_share);
      if (auto e = escape_filter_overhead(w, w.configs[ci]))
        max_escape = std::max(max_escape.value_or(-1.0), *e);
    }
    row["overhead_share_max"] = max_overhead;
    if (max_escape) row["escape_filter_overhead_max"] = *max_escape;
    summary.push_back(row);
  }
  j["summary"] = summary;
  if (s.reference) j["reference"] = yaml_to_json(s.reference);
  return j;
}

void write_translation_csv(const std::vector<WorkloadResult>& r, std::ostream& out) {
  out << "workload,configuration,mode,guest_pages,host_pages,escape_filter,references,walks,"
         "misses_per_kiloref,cycles_per_miss,memory_refs_per_miss,ratio_to_native,"
         "overhead_share,linear_model_walk_cycles,simulated_walk_cycles\n";
  for (const auto& w : r) {
    for (const auto& c : w.configs) {
      const DerivedMetrics m = derive(w, c);
      out << fmt::format("{},{},{},{},{},{},{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{},{}\n",
                         w.name, c.spec->name, kModeNames[static_cast<std::size_t>(c.spec->mode)],
                         page_size_name(c.spec->guest_pages), page_size_name(c.spec->host_pages),
                         c.spec->escape_filter ? 1 : 0, c.stats.references, c.stats.walks,
                         m.misses_per_kiloref, m.cycles_per_miss, m.refs_per_miss,
                         m.ratio_to_native, m.overhead_share,
                         c.linear_model_cycles ? fmt::format("{:.0f}", *c.linear_model_cycles) : "",
                         c.stats.walk_cycles);
    }
  }
}

void print_translation_summary(std::ostream& out, const TranslationScenario& s,
                               const std::vector<WorkloadResult>& r) {
  out << fmt::format("{}: {} references per workload after {} warm-up\n", s.name, s.references,
                     s.warmup);
  for (const auto& w : r) {
    out << fmt::format("\n{}: {}\n  guest {} GiB\n", w.name, w.description, w.guest_memory >> 30);
    out << fmt::format("  {:<28} {:>8} {:>9} {:>6} {:>7} {:>9} {:>6} {:>9}\n", "configuration",
                       "MPKI", "cyc/miss", "refs", "xnative", "overhead", "F", "model/sim");
    for (const auto& c : w.configs) {
      const DerivedMetrics m = derive(w, c);
      std::string model = "-";
      if (c.linear_model_cycles && c.stats.walk_cycles > 0) {
        model = fmt::format("{:.2f}",
                            *c.linear_model_cycles / static_cast<double>(c.stats.walk_cycles));
      }
      const auto f = segment_share(c.spec->mode, c.stats);
      std::string extra;
      if (auto e = escape_filter_overhead(w, c)) {
        extra = fmt::format("  escape filter +{:.3f}%", 100 * *e);
      }
      if (c.compaction && c.compaction->degraded_ns > 0) {
        extra += fmt::format("  no VMM segment {:.1f}% of time, {:.1f}% of L1 misses",
                             100 * c.compaction->degraded_share(),
                             100 * div(static_cast<double>(c.degraded_l1_misses),
                                       static_cast<double>(c.stats.l1_misses)));
      }
      out << fmt::format("  {:<28} {:>8.3f} {:>9.1f} {:>6.2f} {:>7.2f} {:>8.2f}% {:>6} {:>9}{}\n",
                         c.spec->name, m.misses_per_kiloref, m.cycles_per_miss, m.refs_per_miss,
                         m.ratio_to_native, 100 * m.overhead_share,
                         f ? fmt::format("{:.3f}", *f) : "-", model, extra);
    }
  }
  out << "\n  MPKI: page walks (L2 TLB misses) per 1000 data references; cyc/miss: cycles per "
         "walk;\n"
         "  refs: memory references per walk; xnative: cycles per miss over base native with the\n"
         "  same guest pages; overhead: walk cycles over run time; F: share of misses the\n"
         "  segment(s) serve; model/sim: seed Table IV linear model over simulated walk cycles.\n";
}

}  // namespace memvirt::translation
