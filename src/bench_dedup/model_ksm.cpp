// Phase 2 of `memvirt bench dedup`: memvirt's KSM model over the same pages, in virtual time.
// The pages sit in one VM of a simulated host, with the content mix's fingerprints; ksmd runs
// as the model schedules it (a batch takes its calibrated CPU cost, then sleep_millisecs); a
// writer event rewrites the same pages at the same period as the real writer thread.
#include <algorithm>
#include <memory>

#include "bench_dedup/dedup_bench.hpp"
#include "guest/kernel.hpp"
#include "host/host_memory.hpp"
#include "reclaim/ksm.hpp"

namespace memvirt {

DedupPhaseResult run_model_ksm(const DedupBenchConfig& cfg, const ContentMix& mix,
                               const CostProfile& costs, DedupProgress& progress) {
  DedupPhaseResult r;
  r.name = "KSM model";
  progress.phase(r.name);
  HostMemory host(std::make_unique<FingerprintStore>());
  // The guest kernel model wants whole 2 MiB blocks and at least 4 MiB; pages past the mix
  // stay untouched, and KSM scans only present pages.
  const std::uint64_t vm_pages =
      std::max<std::uint64_t>(1024, (mix.pages.size() + 511) / 512 * 512);
  GuestKernelConfig kcfg;
  kcfg.memory = Bytes::from_pages(vm_pages);
  const VmId vm = host.add_vm(kcfg.memory);
  CostAccount vcpu("vcpu", 1);
  CostAccount faults("faults", 1);
  GuestKernel kernel(kcfg, host, vm, costs, vcpu, faults);
  for (std::size_t i = 0; i < mix.pages.size(); ++i) {
    host.write(vm, Gfn{static_cast<std::uint32_t>(i)}, mix.pages[i]);
  }

  EventQueue queue;
  Accounts accounts;
  MechanismEnv env;
  env.queue = &queue;
  env.host = &host;
  env.accounts = &accounts;
  env.costs = &costs;
  KsmConfig kc;
  kc.pages_to_scan = cfg.ksm.pages_to_scan;
  kc.sleep = Duration::millis(cfg.ksm.sleep_millisecs);
  kc.max_page_sharing = cfg.ksm.max_page_sharing;
  kc.use_zero_pages = cfg.ksm.use_zero_pages;
  kc.smart_scan = cfg.ksm.smart_scan;
  kc.checksum = Op::kXxh64Page;  // the kernels this command runs on hash with xxh64
  Ksm ksm(kc);
  env.peers.push_back(&ksm);
  ksm.start(env);
  ksm.attach(VmHandle{vm, 0, &kernel, &vcpu});
  const CostAccount& ksmd = accounts.get("ksmd");

  std::unique_ptr<PeriodicDaemon> writer;
  std::uint64_t generation = 0;
  if (!mix.rewritten.empty() && cfg.rewrite_period.ns() > 0) {
    writer = std::make_unique<PeriodicDaemon>(queue, EventQueue::kWorkload, [&](TimePoint) {
      ++generation;
      for (const std::uint32_t page : mix.rewritten) {
        host.write(vm, Gfn{page}, rewritten_content(cfg.mix, page, generation));
      }
      return cfg.rewrite_period;
    });
    writer->start(cfg.rewrite_period);
  }

  SteadyStateDetector steady(cfg.rule);
  for (std::int64_t k = 1;; ++k) {
    const TimePoint t{k * cfg.sample_interval.ns()};
    while (queue.step(t)) {
    }
    queue.advance_to(t);
    const Ksm::Counters c = ksm.counters();
    DedupSample s;
    s.t = t.seconds();
    s.pages = c.pages_sharing + ksm.stats().ksm_zero_pages.value();
    s.cpu_seconds = static_cast<double>(ksmd.busy().ps) * 1e-12;
    s.rounds = ksm.stats().full_scans.value();
    s.scanned = ksm.stats().pages_scanned.value();
    r.timeline.push_back(s);
    if ((k & 15) == 0) progress.sample(r.name, s);
    if (steady.add(s.t, s.pages, s.rounds >= 2)) break;
    if (s.t >= cfg.timeout.seconds()) break;
  }
  if (steady.steady()) {
    r.steady_time = steady.time();
    r.at_steady = r.timeline[steady.index()];
  }
  r.last = r.timeline.back();
  progress.phase_done();
  return r;
}

}  // namespace memvirt
