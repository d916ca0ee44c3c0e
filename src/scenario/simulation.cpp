#include "scenario/simulation.hpp"

#include <fmt/format.h>

#include <chrono>
#include <stdexcept>

#include "reclaim/balloon.hpp"
#include "reclaim/ksm.hpp"
#include "reclaim/zswap.hpp"
#include "scenario/virtual_disk.hpp"

namespace memvirt {

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
double pages_gib(std::uint64_t pages) {
  return static_cast<double>(pages) * kPageSize / kGiB;
}
}  // namespace

struct Simulation::Vm {
  unsigned index = 0;
  std::size_t workloads_finished = 0;
  VmId id;
  bool alive = false;
  std::unique_ptr<VirtualDisk> disk;
  std::unique_ptr<GuestKernel> kernel;
  std::vector<std::unique_ptr<Workload>> workloads;
};

Simulation::Simulation(const Scenario& scenario, unsigned vms, LaunchOrder order)
    : s_(scenario),
      vm_count_(vms),
      order_(order),
      recorder_(scenario.experiment.warmup, {"host_lazy_gib"}) {
  host_ = std::make_unique<HostMemory>(make_content_store(s_.host.content, s_.host.memory.pages()));
  vcpus_ = &accounts_.get("guest_vcpus", 0);
  host_faults_ = &accounts_.get("host_fault_in", 1);
  // Without a stated CPU count every vCPU has a host CPU of its own: as many as could ever
  // be runnable at once.
  cpus_ = std::make_unique<CpuScheduler>(
      queue_, s_.host.cpus.value_or(std::max(1U, vm_count_) * s_.vm.vcpus));
  if (s_.vm.disk.value() > 0) {
    disk_ = std::make_unique<HostDisk>(queue_, s_.host.disk);
    io_backend_ = &accounts_.get("host_io_backend", 1);
  }
  if (s_.host.hypervisor == Hypervisor::kXen) {
    xen_ = std::make_unique<XenHost>(queue_, *host_, s_.costs, s_.host.memory.pages(),
                                     s_.host.dom0_memory.pages());
  }
  for (const std::string_view c : kGuestColumns) recorder_.add_column(std::string(c));
  MechanismEnv env;
  env.queue = &queue_;
  env.host = host_.get();
  env.xen = xen_.get();
  env.accounts = &accounts_;
  env.costs = &s_.costs;
  env.seed = s_.seed;
  for (const auto& spec : s_.reclaim) mechanisms_.push_back(spec->make());
  for (const auto& m : mechanisms_) env.peers.push_back(m.get());
  // The mechanisms' own columns, named by their place in the configuration.
  struct Names final : StatsVisitor {
    RunRecorder* recorder;
    std::string prefix;
    void counter(std::string_view n, const Counter&) override { value(n, 0); }
    void value(std::string_view n, double) override {
      recorder->add_column(prefix + std::string(n));
    }
  };
  for (std::size_t i = 0; i < mechanisms_.size(); ++i) {
    Names names;
    names.recorder = &recorder_;
    names.prefix = fmt::format("reclaim[{}].", i);
    mechanisms_[i]->visit_columns(names);
  }
  for (const auto& m : mechanisms_) m->start(env);
  for (const auto& m : mechanisms_) {
    if (auto* b = dynamic_cast<Balloon*>(m.get())) balloon_ = b;
    if (auto* k = dynamic_cast<Ksm*>(m.get())) ksm_ = k;
  }
  if (s_.policy) {
    // The scenario's loader checked that the mechanisms the policy acts through are there.
    policy_ = s_.policy->spec->make();
    policy_loop_.emplace(queue_, EventQueue::kHost, [this](TimePoint) {
      run_policy();
      return policy_->sample_interval();
    });
    policy_loop_->start(policy_->sample_interval());
  }
  if (order_ == LaunchOrder::kEachAfterThePrevious) {
    // One after another: each VM starts once the one before has run its programs.
    if (vm_count_ > 0) queue_.at(TimePoint{}, EventQueue::kHost, [this](TimePoint) { launch(0); });
    return;
  }
  for (unsigned i = 0; i < vm_count_; ++i) {
    queue_.at(TimePoint{} + Duration{s_.vm.launch_interval.ns() * i}, EventQueue::kHost,
              [this, i](TimePoint) { launch(i); });
  }
}

Simulation::~Simulation() = default;

void Simulation::launch(unsigned index) {
  // vms_[i] is VM i: the policy's actions find their VM by its place.
  if (index != vms_.size()) throw std::logic_error("VMs must launch in index order");
  auto vm = std::make_unique<Vm>();
  vm->index = index;
  vm->id = host_->add_vm(s_.vm.max_memory);
  vm->alive = true;
  vcpus_->add_threads(s_.vm.vcpus);
  vm->kernel =
      std::make_unique<GuestKernel>(s_.vm.kernel, *host_, vm->id, s_.costs, *vcpus_, *host_faults_);
  vm->kernel->attach_cpus(queue_, *cpus_, cpus_->add_group(s_.vm.vcpus));
  if (disk_) {
    const std::uint64_t sectors = s_.vm.disk.value() / kSectorSize;
    vm->disk =
        std::make_unique<VirtualDisk>(*disk_, vm->id, sectors * index, s_.costs, *io_backend_);
    vm->kernel->attach_disk(queue_, *vm->disk,
                            (s_.vm.disk - s_.vm.kernel.swap).value() / kSectorSize);
  }
  const VmHandle handle{vm->id, index, vm->kernel.get(), vcpus_};
  if (policy_ && !policy_->admits(observe(), s_.vm.memory)) {
    // The policy keeps it from starting (partitioning: it would overcommit the host).
    vm->alive = false;
    vm->kernel->halt();
    host_->remove_vm(vm->id);
    ++refused_;
    vms_.push_back(std::move(vm));
    return;
  }
  if (xen_ && !xen_->create_domain(handle, s_.vm.memory.pages())) {
    // Xen cannot build the domain: it never runs.
    vm->alive = false;
    vm->kernel->halt();
    host_->remove_vm(vm->id);
    ++killed_;
    vms_.push_back(std::move(vm));
    return;
  }
  for (const auto& m : mechanisms_) m->attach(handle);
  // Boot: the guest OS touches its footprint; the first part is the image's, identical in
  // every VM booted from it, the rest is this VM's own.
  const std::uint64_t footprint = s_.vm.boot.footprint.pages();
  if (footprint > 0) {
    GuestKernel& k = *vm->kernel;
    const std::uint32_t pid = k.spawn("system", false);
    const std::uint64_t region = k.mmap(pid, s_.vm.boot.footprint);
    const auto shared =
        static_cast<std::uint64_t>(s_.vm.boot.shared_fraction * static_cast<double>(footprint));
    const std::uint64_t image = name_hash(s_.vm.boot.image);
    UniqueContent own(s_.seed, index, 0);
    k.touch(pid, region, footprint, [&](std::uint64_t i) {
      return i < shared ? make_fingerprint(splitmix64(image + i)) : own.next();
    });
  }
  // Memory the boot touches and frees again (the initramfs and its unpacked copy,
  // decompression buffers): the image's contents, the same in every VM of the image.
  if (const std::uint64_t transient = s_.vm.boot.transient.pages(); transient > 0) {
    GuestKernel& k = *vm->kernel;
    const std::uint32_t pid = k.spawn("boot", false);
    const std::uint64_t region = k.mmap(pid, s_.vm.boot.transient);
    const std::uint64_t base = name_hash(s_.vm.boot.image) + footprint;
    k.touch(pid, region, transient,
            [&](std::uint64_t i) { return make_fingerprint(splitmix64(base + i)); });
    k.exit(pid);
  }
  Vm& ref = *vm;
  vms_.push_back(std::move(vm));
  queue_.after(s_.vm.boot.boot_time, EventQueue::kGuest, [this, &ref](TimePoint) {
    if (!ref.alive) return;
    for (std::size_t w = 0; w < s_.vm.workloads.size(); ++w) {
      ref.workloads.push_back(s_.vm.workloads[w]->make());
      WorkloadEnv env;
      env.queue = &queue_;
      env.kernel = ref.kernel.get();
      env.vm_alive = &ref.alive;
      env.seed = s_.seed;
      env.vm_index = ref.index;
      env.workload_index = w;
      env.finished = [this, &ref] {
        if (++ref.workloads_finished == s_.vm.workloads.size()) vm_done(ref);
      };
      ref.workloads.back()->start(env);
    }
  });
}

void Simulation::vm_done(const Vm& vm) {
  if (!vm.alive) return;
  ++completed_;
  if (completed_ == vm_count_) completion_ = queue_.now();
  if (order_ == LaunchOrder::kEachAfterThePrevious && vm.index + 1 < vm_count_) {
    const unsigned next = vm.index + 1;
    queue_.after(s_.vm.launch_interval, EventQueue::kHost,
                 [this, next](TimePoint) { launch(next); });
  }
}

void Simulation::host_oom_kill() {
  // Like the host kernel's OOM killer facing QEMU processes: the largest resident set goes.
  Vm* victim = nullptr;
  std::uint64_t largest = 0;
  for (auto& vm : vms_) {
    if (!vm->alive) continue;
    const std::uint64_t rss = host_->resident_pages(vm->id);
    if (victim == nullptr || rss > largest) {
      victim = vm.get();
      largest = rss;
    }
  }
  if (victim == nullptr) return;
  victim->alive = false;
  victim->kernel->halt();
  for (const auto& m : mechanisms_) m->detach(victim->id);
  if (xen_) xen_->destroy_domain(victim->id);
  host_->remove_vm(victim->id);
  ++killed_;
}

void Simulation::sample(TimePoint now) {
  std::uint64_t in_use = 0, free = 0, committed = 0, touched = 0;
  unsigned alive = 0;
  for (const auto& vm : vms_) {
    if (!vm->alive) continue;
    ++alive;
    const GuestKernel& k = *vm->kernel;
    free += k.free_pages() + k.pcp_pages();
    in_use += k.total_pages() - k.free_pages() - k.pcp_pages();
    committed += k.committed_as_pages();
    touched += host_->vm_stats(vm->id).touched_pages;
  }
  std::vector<double> row{now.seconds(),
                          pages_gib(host_used_pages()),
                          pages_gib(host_->private_frames()),
                          pages_gib(host_->shared_frames()),
                          static_cast<double>(alive),
                          pages_gib(in_use),
                          pages_gib(free),
                          pages_gib(committed),
                          pages_gib(touched),
                          pages_gib(host_->lazy_frames())};
  struct Values final : StatsVisitor {
    std::vector<double>* row;
    void counter(std::string_view, const Counter& c) override {
      row->push_back(static_cast<double>(c.value()));
    }
    void value(std::string_view, double v) override { row->push_back(v); }
  };
  Meminfo sum;
  std::uint64_t major = 0, refaults = 0, read = 0, written = 0;
  for (const auto& vm : vms_) {
    if (!vm->alive) continue;
    const Meminfo m = vm->kernel->meminfo();
    sum.cached += m.cached;
    sum.dirty += m.dirty;
    sum.writeback += m.writeback;
    sum.swap_total += m.swap_total - m.swap_free;
    sum.active_file += m.active_file;
    sum.inactive_file += m.inactive_file;
    sum.active_anon += m.active_anon;
    sum.inactive_anon += m.inactive_anon;
    sum.available += m.available;
    const GuestStats& st = vm->kernel->stats();
    major += st.major_faults.value();
    refaults += st.refaults.value();
    read += st.sectors_read.value();
    written += st.sectors_written.value();
  }
  // vCPU utilisation since the last sample: busy vCPU time over the vCPUs' time.
  const double busy_s = vcpus_->busy().duration().seconds();
  const double span_s = (now - last_sample_).seconds();
  const double vcpu_s = span_s * static_cast<double>(std::max(1U, vcpus_->threads()));
  const double utilisation = span_s > 0 ? (busy_s - last_vcpu_busy_s_) / vcpu_s : 0.0;
  last_sample_ = now;
  last_vcpu_busy_s_ = busy_s;
  for (const double v :
       {pages_gib(sum.cached), pages_gib(sum.dirty), pages_gib(sum.writeback),
        pages_gib(sum.swap_total), pages_gib(sum.active_file), pages_gib(sum.inactive_file),
        pages_gib(sum.active_anon), pages_gib(sum.inactive_anon), pages_gib(sum.available),
        static_cast<double>(major), static_cast<double>(refaults), static_cast<double>(read),
        static_cast<double>(written), utilisation}) {
    row.push_back(v);
  }
  Values values;
  values.row = &row;
  for (const auto& m : mechanisms_) m->visit_columns(values);
  recorder_.add_row(std::move(row));
  if (s_.experiment.checks != CheckLevel::kNone) check(s_.experiment.checks);
}

void Simulation::check(CheckLevel level) const {
  const bool full = level == CheckLevel::kFull;
  if (full) {
    host_->check_full();
  } else {
    host_->check_accounting();
  }
  if (xen_) xen_->check(full);
  for (const auto& m : mechanisms_) m->check(full);
  for (const auto& vm : vms_) {
    if (vm->alive) vm->kernel->check(full);
  }
}

std::uint64_t Simulation::host_used_pages() const {
  return xen_ ? xen_->used_pages() : host_->frames_used();
}

HostObservation Simulation::observe() const {
  HostObservation o;
  o.since_start = queue_.now() - TimePoint{};
  o.total = s_.host.memory;
  const std::uint64_t used = host_used_pages();
  const std::uint64_t capacity = s_.host.memory.pages();
  o.free = Bytes::from_pages(used < capacity ? capacity - used : 0);
  if (ksm_ != nullptr) {
    const Ksm::Counters c = ksm_->counters();
    o.ksm =
        KsmObservation{ksm_->running(), ksm_->pages_to_scan(), ksm_->sleep(),
                       c.pages_shared,  c.pages_sharing,       ksm_->stats().full_scans.value()};
  }
  for (const auto& vm : vms_) {
    if (!vm->alive) continue;
    GuestObservation g;
    g.key = vm->index;
    g.name = fmt::format("vm{}", vm->index);
    g.memory = s_.vm.memory;
    g.actual = g.target = g.memory;
    if (balloon_ != nullptr) {
      const std::uint64_t pages = g.memory.pages();
      g.actual = Bytes::from_pages(pages - std::min(pages, balloon_->actual_pages(vm->id)));
      g.target = Bytes::from_pages(pages - std::min(pages, balloon_->target_pages(vm->id)));
      if (const BalloonStatsReport* r = balloon_->last_stats(vm->id)) {
        GuestMemoryStats st;
        st.age = queue_.now() - r->at;
        st.total = Bytes{r->get(BalloonStatTag::kMemTotal)};
        st.free = Bytes{r->get(BalloonStatTag::kMemFree)};
        st.available = Bytes{r->get(BalloonStatTag::kAvailable)};
        st.caches = Bytes{r->get(BalloonStatTag::kCaches)};
        st.swap_in_bytes = r->get(BalloonStatTag::kSwapIn);
        st.swap_out_bytes = r->get(BalloonStatTag::kSwapOut);
        st.major_faults = r->get(BalloonStatTag::kMajorFaults);
        st.minor_faults = r->get(BalloonStatTag::kMinorFaults);
        g.stats = st;
      }
    }
    if (s_.policy) {
      g.min = s_.policy->min_memory;
      g.max = s_.policy->max_memory;
    } else {
      g.min = g.max = g.memory;
    }
    g.resident = Bytes::from_pages(host_->resident_pages(vm->id));
    g.committed = Bytes::from_pages(vm->kernel->committed_as_pages());
    g.memory_stall = vm->kernel->memory_stall();
    o.guests.push_back(std::move(g));
  }
  return o;
}

void Simulation::run_policy() {
  const HostObservation now = observe();
  PolicyActions actions = policy_->tick(now);
  policy_stats_.ticks.add();
  policy_stats_.clamped_requests.add(clamp_actions(now, actions));
  for (const PolicyActions::BalloonRequest& r : actions.balloons) {
    // VMs are kept in launch order, which is index order: the key is the VM's place.
    if (r.guest >= vms_.size()) continue;
    const Vm& vm = *vms_[r.guest];
    if (!vm.alive || vm.index != r.guest) continue;
    policy_stats_.balloon_requests.add();
    balloon_->set_target(vm.id, s_.vm.memory.pages() - r.target.pages());
  }
  if (actions.ksm && ksm_ != nullptr) {
    policy_stats_.ksm_changes.add();
    ksm_->tune(actions.ksm->run, actions.ksm->pages_to_scan, actions.ksm->sleep);
  }
}

std::uint64_t Simulation::simulator_bytes() const {
  std::uint64_t bytes = host_->memory_bytes();
  for (const auto& vm : vms_) {
    if (vm->kernel) bytes += vm->kernel->memory_bytes();
  }
  return bytes;
}

void Simulation::collect_stats(StatsNode root) const {
  for (std::size_t i = 0; i < mechanisms_.size(); ++i) {
    StatsNode node = root.element("reclaim", i);
    node.text("impl", s_.reclaim[i]->name());
    mechanisms_[i]->visit_stats(node);
  }
  if (policy_) {
    StatsNode p = root.child("policy");
    p.text("impl", policy_->name());
    p.counter("ticks", policy_stats_.ticks);
    p.counter("balloon_requests", policy_stats_.balloon_requests);
    p.counter("clamped_requests", policy_stats_.clamped_requests);
    p.counter("ksm_changes", policy_stats_.ksm_changes);
    policy_->visit_stats(p);
  }
  // The VMs alive at the end, summed: what their kernels, programs and host mappings counted.
  StatsNode vm_node = root.child("vm");
  StatsNode kernel = vm_node.child("kernel");
  StatsNode host = root.child("host");
  StatsNode cpus = root.child("host_cpus");
  cpus_->visit(cpus);
  if (xen_) {
    StatsNode xen = root.child("xen");
    xen_->visit_stats(xen);
  }
  // Every element first: a node refers into its list, which must not grow after.
  for (std::size_t w = 0; w < s_.vm.workloads.size(); ++w) {
    vm_node.element("workloads", w).text("type", s_.vm.workloads[w]->name());
  }
  std::vector<StatsNode> workloads;
  for (std::size_t w = 0; w < s_.vm.workloads.size(); ++w) {
    workloads.push_back(vm_node.element("workloads", w));
  }
  for (const auto& vm : vms_) {
    if (!vm->alive) continue;
    vm->kernel->stats().visit(kernel);
    host_->vm_stats(vm->id).visit(host);
    for (std::size_t w = 0; w < vm->workloads.size(); ++w) {
      vm->workloads[w]->stats().visit(workloads[w]);
    }
  }
}

RunResult Simulation::run(ProgressSink* progress, std::optional<Bytes> abort_above) {
  const TimePoint end = TimePoint{} + s_.experiment.duration;
  PeriodicDaemon sampler(queue_, EventQueue::kSample, [this](TimePoint now) {
    sample(now);
    return s_.experiment.sample_interval;
  });
  sampler.start(Duration{0});
  const std::uint64_t capacity = s_.host.memory.pages();
  const std::uint64_t abort_pages = abort_above ? abort_above->pages() : UINT64_MAX;
  RunResult r;
  auto last_report = std::chrono::steady_clock::now();
  while (queue_.step(end)) {
    const TimePoint now = queue_.now();
    recorder_.open_window(now, pages_gib(host_used_pages()));
    std::uint64_t used = host_used_pages();
    if (const std::uint64_t limit = std::min(capacity, abort_pages); used > limit) {
      // The host reclaims lazily freed (MADV_FREE) frames before anything else.
      host_->reclaim_lazy(used - limit);
      used = host_used_pages();
    }
    // Going over the budget ends the run before the OOM killer would pick a victim.
    if (used > abort_pages) {
      recorder_.observe_host(now, pages_gib(used));
      r.exceeded = true;
      r.exceeded_at_s = now.seconds();
      break;
    }
    if (used > capacity && s_.host.kill_on_exhaustion) {
      while (host_used_pages() > capacity) host_oom_kill();
      used = host_used_pages();
    }
    recorder_.observe_host(now, pages_gib(used));
    if (progress != nullptr && (queue_.fired() & 1023) == 0) {
      const auto wall = std::chrono::steady_clock::now();
      if (wall - last_report > std::chrono::milliseconds(200)) {
        last_report = wall;
        progress->update(now.seconds(), end.seconds());
      }
    }
  }
  const TimePoint stop = r.exceeded ? queue_.now() : end;
  if (!r.exceeded) {
    queue_.advance_to(end);
    sample(end);
  }
  sampler.stop();
  if (policy_loop_) policy_loop_->stop();
  if (progress != nullptr) progress->update(stop.seconds(), end.seconds());

  collect_stats(recorder_.stats());
  recorder_.finish(stop, r);
  r.vms = static_cast<unsigned>(vms_.size());
  r.vms_completed = completed_;
  r.vms_killed = killed_;
  r.vms_refused = refused_;
  r.simulated_s = stop.seconds();
  r.cpu = summarize(accounts_, stop - TimePoint{});
  r.events = queue_.fired();
  r.workload_ops_per_s.assign(s_.vm.workloads.size(), 0.0);
  for (const auto& vm : vms_) {
    if (!vm->alive) continue;
    r.touched_pages += host_->vm_stats(vm->id).touched_pages;
    r.guest_oom_kills += vm->kernel->stats().oom_kills.value();
    const GuestStats& gs = vm->kernel->stats();
    r.sectors_read += gs.sectors_read.value();
    r.sectors_written += gs.sectors_written.value();
    r.pswpin += gs.pswpin.value();
    r.pswpout += gs.pswpout.value();
    r.major_faults += gs.major_faults.value();
    r.refaults += gs.refaults.value();
    r.memory_stall_s += vm->kernel->memory_stall().seconds();
    for (std::size_t w = 0; w < vm->workloads.size(); ++w) {
      const WorkloadStats& st = vm->workloads[w]->stats();
      r.workload_cycles += st.cycles.value();
      r.workloads_killed += st.killed.value();
      r.work_s += st.work_time.seconds();
      if (st.measured.ns() > 0) {
        r.workload_ops_per_s[w] +=
            static_cast<double>(st.operations.value()) / st.measured.seconds();
      }
    }
  }
  r.simulator_bytes = simulator_bytes();
  if (completion_) r.completion_s = completion_->seconds();
  if (const Tmem* tmem = xen_ ? xen_->tmem() : nullptr) {
    r.tmem = RunResult::Tmem{tmem->pages_max(), tmem->apparent_pages_max(),
                             tmem->persistent_page_count(), tmem->persistent_page_count_max()};
  }
  for (const auto& m : mechanisms_) {
    const auto* z = dynamic_cast<const Zswap*>(m.get());
    if (z == nullptr) continue;
    RunResult::Zswap& out = r.zswap.emplace();
    for (const auto& vm : vms_) {
      if (!vm->alive) continue;
      out.stored_pages_end += z->stored_pages(vm->id);
      out.stored_pages_max += z->stored_pages_max(vm->id);
      out.pool_pages_end += z->pool_total_size(vm->id) / kPageSize;
      out.pool_pages_max += z->pool_pages_max(vm->id);
      out.same_filled_pages_end += z->same_filled_pages(vm->id);
    }
    out.written_back_pages = z->stats().written_back_pages.value();
  }
  r.vcpu_seconds = vcpus_->busy().duration().seconds();
  // Under Xen, dom0's vCPUs run the block backend: its time is vCPU time too.
  if (xen_ && io_backend_ != nullptr) r.vcpu_seconds += io_backend_->busy().duration().seconds();
  for (const auto& a : accounts_.all()) {
    if (a.get() != vcpus_) r.host_cpu_seconds += a->busy().duration().seconds();
  }
  return r;
}

}  // namespace memvirt
