#include "policy/ksmtuned.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace memvirt {

KsmtunedConfig Ksmtuned::config_from(Params& p) {
  KsmtunedConfig c;
  c.monitor_interval =
      p.duration("monitor_interval", c.monitor_interval, "KSM_MONITOR_INTERVAL (60 s)");
  if (c.monitor_interval.ns() <= 0) p.fail("monitor_interval", "must be positive");
  KsmScanSteps& k = c.steps;
  k.boost = p.integer("npages_boost", k.boost, "KSM_NPAGES_BOOST (300)", 0, 1 << 30);
  k.decay = p.integer("npages_decay", k.decay, "KSM_NPAGES_DECAY (-50)", -(1 << 30), 0);
  k.min = p.integer("npages_min", k.min, "KSM_NPAGES_MIN (64)", 1, 1 << 30);
  k.max = p.integer("npages_max", k.max, "KSM_NPAGES_MAX (1250)", k.min, 1 << 30);
  c.sleep_msec =
      p.integer("sleep_msec", c.sleep_msec, "KSM_SLEEP_MSEC for 16 GiB (10)", 0, 1 << 20);
  c.thres_coef =
      p.integer("thres_coef", c.thres_coef, "KSM_THRES_COEF, % of MemTotal (20)", 0, 100);
  c.thres_const_kb =
      p.integer("thres_const_kb", c.thres_const_kb, "KSM_THRES_CONST, kB (2048)", 0, 1LL << 40);
  return c;
}

PolicyActions Ksmtuned::tick(const HostObservation& now) {
  PolicyActions out;
  // The script works in kB with shell integer arithmetic.
  const auto total = static_cast<std::int64_t>(now.total.value() / 1024);
  if (total == 0) return out;
  const std::int64_t sleep = std::max<std::int64_t>(10, cfg_.sleep_msec * 16 * 1024 * 1024 / total);
  const std::int64_t thres = std::max(total * cfg_.thres_coef / 100, cfg_.thres_const_kb);
  std::int64_t committed = 0;
  for (const GuestObservation& g : now.guests) {
    committed += static_cast<std::int64_t>(g.resident.value() / 1024);
  }
  const auto free = static_cast<std::int64_t>((now.free + now.cached).value() / 1024);
  if (committed + thres < total && free > thres) {
    out.ksm = KsmTuning{false, static_cast<std::uint64_t>(std::max<std::int64_t>(npages_, 0)),
                        Duration::millis(sleep)};
    if (now.ksm) out.ksm->pages_to_scan = now.ksm->pages_to_scan;
    out.ksm_reason = fmt::format("{} kB committed + {} kB < {} kB and free {} kB > {} kB: stop",
                                 committed, thres, total, free, thres);
    return out;
  }
  npages_ = cfg_.steps.next(npages_, free < thres);
  out.ksm = KsmTuning{true, static_cast<std::uint64_t>(npages_), Duration::millis(sleep)};
  out.ksm_reason =
      fmt::format("{} kB committed + {} kB >= {} kB, free {} kB {} {} kB: {} pages", committed,
                  thres, total, free, free < thres ? "<" : ">=", thres, npages_);
  return out;
}

}  // namespace memvirt
