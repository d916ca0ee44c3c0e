#include "reclaim/pageone.hpp"

namespace memvirt {

PageOneConfig PageOne::config_from(Params& p) {
  PageOneConfig c;
  c.merge_period = p.duration("merge_period", c.merge_period,
                              "time between merge passes (seed 000: 600 s; 200 s in its table)");
  if (c.merge_period.ns() <= 0) p.fail("merge_period", "must be positive");
  c.work_threads = static_cast<unsigned>(
      p.integer("work_threads", 12, "work threads, shared with PPR (seed 000: 12)", 1, 1024));
  c.stable_periods = static_cast<unsigned>(p.integer(
      "stable_periods", 2, "merge periods a page must stay unchanged (seed 000: 2)", 1, 3));
  return c;
}

void PageOne::start(const MechanismEnv& env) {
  env_ = env;
  daemon_account_ = &env.accounts->get("ppr_pageone_daemon", 1);
  workers_ = &env.accounts->get("pageone_workers", cfg_.work_threads);
  daemon_ = std::make_unique<PeriodicDaemon>(*env.queue, EventQueue::kDaemon, [this](TimePoint) {
    merge_pass();
    return cfg_.merge_period;
  });
  daemon_->start(cfg_.merge_period);
}

void PageOne::attach(const VmHandle& vm) {
  env_.host->enable_dirty_tracking(vm.id);
  vms_.push_back(VmState{vm, std::vector<std::uint64_t>((vm.kernel->total_pages() + 31) / 32)});
}

void PageOne::detach(VmId vm) {
  std::erase_if(vms_, [&](const VmState& s) { return s.vm.id == vm; });
}

bool PageOne::free_by_peer(VmId vm, Gfn gfn) const {
  for (const Mechanism* m : env_.peers) {
    if (m != this && m->known_free(vm, gfn)) return true;
  }
  return false;
}

void PageOne::merge_pass() {
  stats_.passes.add();
  HostMemory& host = *env_.host;
  const CostProfile& c = *env_.costs;
  CpuTime daemon{};
  CpuTime work{};
  // Candidates of this pass that found no partner yet: content -> page.
  std::unordered_map<std::uint64_t, std::pair<VmId, Gfn>> pending;
  std::erase_if(merged_, [&](const auto& kv) {
    return host.shared_refs(kv.second) == 0 || host.shared_content(kv.second).value() != kv.first;
  });
  for (VmState& s : vms_) {
    const auto pages = static_cast<std::uint32_t>(s.vm.kernel->total_pages());
    daemon += c.cost(Op::kBitmapScanWord) * ((pages + 63) / 64);
    for (std::uint32_t g = 0; g < pages; ++g) {
      const Gfn gfn{g};
      std::uint64_t& word = s.clean[g >> 5];
      const unsigned shift = (g & 31) * 2;
      unsigned count = static_cast<unsigned>((word >> shift) & 3);
      const bool dirty = host.take_dirty(s.vm.id, gfn);
      const PageState st = host.state(s.vm.id, gfn);
      count = (dirty || st != PageState::kPrivate) ? 0 : std::min(count + 1, 3U);
      word = (word & ~(3ULL << shift)) | (static_cast<std::uint64_t>(count) << shift);
      if (count < cfg_.stable_periods) continue;
      if (free_by_peer(s.vm.id, gfn)) {
        stats_.pages_skipped_free.add();
        continue;
      }
      work += c.cost(Op::kXxh64Page);
      stats_.pages_hashed.add();
      const Fingerprint fp = host.peek(s.vm.id, gfn);
      if (is_unique_content(fp)) continue;  // hashed, looked up, no twin can exist
      if (auto it = merged_.find(fp.value()); it != merged_.end()) {
        work += c.cost(Op::kMemcmpPage) + c.cost(Op::kKernelPteUpdate) * 2;
        if (host.merge_into(s.vm.id, gfn, it->second)) stats_.pages_merged.add();
        continue;
      }
      const auto [pit, inserted] = pending.try_emplace(fp.value(), s.vm.id, gfn);
      if (inserted) continue;
      const auto [ovm, ogfn] = pit->second;
      if (host.state(ovm, ogfn) != PageState::kPrivate || host.peek(ovm, ogfn) != fp) {
        pit->second = {s.vm.id, gfn};
        continue;
      }
      work += c.cost(Op::kMemcmpPage) + c.cost(Op::kKernelPteUpdate) * 3;
      const auto id = host.make_shared(ovm, ogfn);
      if (id && host.merge_into(s.vm.id, gfn, *id)) {
        merged_[fp.value()] = *id;
        pending.erase(pit);
        stats_.pages_merged.add(2);
      }
    }
  }
  daemon_account_->charge(daemon);
  workers_->charge(work);
}

void PageOne::visit_columns(StatsVisitor& v) const {
  v.counter("pages_merged", stats_.pages_merged);
  v.counter("pages_hashed", stats_.pages_hashed);
}

void PageOne::visit_stats(StatsVisitor& v) const {
  v.counter("passes", stats_.passes);
  v.counter("pages_hashed", stats_.pages_hashed);
  v.counter("pages_merged", stats_.pages_merged);
  v.counter("pages_skipped_free", stats_.pages_skipped_free);
  std::uint64_t frames = 0;
  for (const auto& [fp, id] : merged_) frames += env_.host->shared_refs(id) > 0 ? 1 : 0;
  v.value("shared_frames", static_cast<double>(frames));
}

}  // namespace memvirt
