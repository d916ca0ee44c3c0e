// The per-VM state of a mechanism. Each state is a PageHooks with a `vm` (VmHandle) member;
// it is hooked into its VM's kernel from add() until remove().
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "reclaim/mechanism.hpp"

namespace memvirt {

template <typename State>
class PerVm {
 public:
  // Takes ownership and attaches the state's hooks; returns it.
  State& add(std::unique_ptr<State> state) {
    state->vm.kernel->add_hooks(state.get());
    states_.push_back(std::move(state));
    return *states_.back();
  }
  // Detaches and drops the state of `vm`, if any.
  void remove(VmId vm) {
    if (State* s = find(vm)) s->vm.kernel->remove_hooks(s);
    std::erase_if(states_, [&](const auto& s) { return s->vm.id == vm; });
  }
  // The state of `vm`, or nullptr when the VM is not attached (or gone).
  [[nodiscard]] State* find(VmId vm) const {
    for (const auto& s : states_) {
      if (s->vm.id == vm) return s.get();
    }
    return nullptr;
  }
  [[nodiscard]] auto begin() const { return states_.begin(); }
  [[nodiscard]] auto end() const { return states_.end(); }

 private:
  std::vector<std::unique_ptr<State>> states_;
};

}  // namespace memvirt
