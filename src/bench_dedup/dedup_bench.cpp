#include "bench_dedup/dedup_bench.hpp"

#include "real/ksm_sysfs.hpp"

namespace memvirt {

std::optional<double> DedupPhaseResult::pages_per_cpu_second() const {
  if (!ran() || !steady_time || at_steady.cpu_seconds <= 0) return std::nullopt;
  return static_cast<double>(at_steady.pages) / at_steady.cpu_seconds;
}

std::optional<double> DedupBenchResult::efficiency_ratio() const {
  const auto p = pageone.pages_per_cpu_second();
  const auto k = real_ksm.pages_per_cpu_second();
  if (!p || !k || *k <= 0) return std::nullopt;
  return *p / *k;
}

std::optional<double> DedupBenchResult::steady_time_ratio() const {
  if (!model_ksm.steady_time || !real_ksm.steady_time || *real_ksm.steady_time <= 0) {
    return std::nullopt;
  }
  return *model_ksm.steady_time / *real_ksm.steady_time;
}

DedupBenchResult run_dedup_bench(DedupBenchConfig cfg, const CostProfile& costs,
                                 std::string cost_profile, DedupProgress& progress) {
  DedupBenchResult r;
  ContentMix mix = make_content_mix(cfg.mix);
  // The model shares the kernel's max_page_sharing when the kernel has KSM.
  const KsmSysfs fs(cfg.ksm_sysfs);
  if (fs.has("max_page_sharing")) {
    cfg.ksm.max_page_sharing = static_cast<std::uint32_t>(fs.read_number("max_page_sharing"));
  }
  if (cfg.run_real_ksm) {
    r.real_ksm = run_real_ksm(cfg, mix, progress);
  } else {
    r.real_ksm.name = "Linux KSM";
    r.real_ksm.skipped = "not asked for";
  }
  if (cfg.run_model) {
    r.model_ksm = run_model_ksm(cfg, mix, costs, progress);
  } else {
    r.model_ksm.name = "KSM model";
    r.model_ksm.skipped = "not asked for";
  }
  if (cfg.run_pageone) {
    r.pageone = run_real_pageone(cfg, mix, progress);
  } else {
    r.pageone.name = "PageONE";
    r.pageone.skipped = "not asked for";
  }
  r.config = std::move(cfg);
  r.mix = std::move(mix);
  r.cost_profile = std::move(cost_profile);
  return r;
}

}  // namespace memvirt
