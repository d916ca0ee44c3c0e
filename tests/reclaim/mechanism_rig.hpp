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

}  // namespace memvirt::testing
