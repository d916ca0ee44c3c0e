// A guest with mechanisms attached, for the mechanism tests.
#pragma once

#include <memory>
#include <vector>

#include "reclaim/mechanism.hpp"
#include "test_util.hpp"

namespace memvirt::testing {

// A guest with mechanisms attached, driven by hand (the daemons' periodic events are not run;
// tests call the passes directly).
struct Rig {
  explicit Rig(Bytes guest = Bytes{32ULL << 20}, bool bytes_backend = false)
      : f(guest, bytes_backend) {
    env.queue = &queue;
    env.host = &f.host;
    env.accounts = &accounts;
    env.costs = &f.costs;
  }
  template <typename M, typename C>
  M& add(C cfg) {
    auto m = std::make_unique<M>(cfg);
    M& ref = *m;
    mechanisms.push_back(std::move(m));
    return ref;
  }
  // Fires the queued events up to `t` seconds of virtual time.
  void run_until(double t) {
    const TimePoint until = TimePoint{} + Duration::seconds(t);
    while (queue.step(until)) {
    }
    queue.advance_to(until);
  }
  // Takes every page the guest can give and backs each on the host.
  std::vector<Gfn> take_all_pages() {
    std::vector<Gfn> pages;
    while (auto g = f.kernel->alloc_pages(0, 0)) {
      f.host.write(f.vm, *g, make_fingerprint(g->value() + 1));
      pages.push_back(*g);
    }
    return pages;
  }
  void start() {
    for (auto& m : mechanisms) env.peers.push_back(m.get());
    for (auto& m : mechanisms) m->start(env);
    for (auto& m : mechanisms) m->attach(VmHandle{f.vm, 0, f.kernel.get(), &f.vcpu});
  }
  GuestFixture f;
  EventQueue queue;
  Accounts accounts;
  MechanismEnv env;
  std::vector<std::unique_ptr<Mechanism>> mechanisms;
};

// A program touches `bytes` and exits, leaving the memory free in the guest (per-CPU lists
// drained) and backed on the host.
inline void touch_and_exit(GuestKernel& k, Bytes bytes) {
  const auto pid = k.spawn("hog");
  const auto region = k.mmap(pid, bytes);
  k.touch(pid, region, bytes.pages(), [](std::uint64_t i) { return make_fingerprint(i + 1); });
  k.exit(pid);
  for (auto& z : k.zones()) z->drain_pcp();
}

}  // namespace memvirt::testing
