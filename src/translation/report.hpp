// Writers for translation experiments: results.json, results.csv and the terminal summary.
// Derived metrics (misses per thousand references, cycles per miss, overhead, ratios) are
// computed here from the counters the translators kept.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <vector>

#include "translation/experiment.hpp"

namespace memvirt::translation {

struct DerivedMetrics {
  double misses_per_kiloref = 0;  // walks (L2 TLB misses) per 1000 references
  double l1_misses_per_kiloref = 0;
  double cycles_per_miss = 0;  // walk cycles per walk
  double refs_per_miss = 0;    // memory references per walk
  double overhead_share = 0;   // walk cycles / (base cycles + walk cycles)
  double ratio_to_native = 0;  // cycles per miss over base native's, same guest pages
  double walk_cycles_per_kiloref = 0;
};

DerivedMetrics derive(const WorkloadResult& w, const ConfigResult& c);

// Extra walk cycles with escapes over the same configuration without, as a share of run time;
// nullopt when the scenario has no such pair for `c`.
std::optional<double> escape_filter_overhead(const WorkloadResult& w, const ConfigResult& c);

nlohmann::ordered_json translation_results_json(const TranslationScenario& s,
                                                const std::vector<WorkloadResult>& r);
void write_translation_csv(const std::vector<WorkloadResult>& r, std::ostream& out);
void print_translation_summary(std::ostream& out, const TranslationScenario& s,
                               const std::vector<WorkloadResult>& r);

}  // namespace memvirt::translation
