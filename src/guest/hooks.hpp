// Hook points where reclaim mechanisms attach to the guest kernel. They are called at the same
// places as in Linux; a hook charges its own costs to its own account.
#pragma once

#include <cstdint>

#include "core/types.hpp"

namespace memvirt {

class Zone;

class PageHooks {
 public:
  virtual ~PageHooks() = default;
  // arch_free_page(): a block leaves use, before it reaches a per-CPU list or the buddy lists.
  virtual void on_free(Gfn /*gfn*/, PageOrder /*order*/) {}
  // arch_alloc_page(): a block enters use, after it left a per-CPU list or the buddy lists.
  virtual void on_alloc(Gfn /*gfn*/, PageOrder /*order*/) {}
  // End of __free_one_page(): a block, after merging, was placed on a buddy free list
  // (where page_reporting_notify_free() is called).
  virtual void on_buddy_free(Zone& /*zone*/, Gfn /*gfn*/, PageOrder /*order*/) {}
  // An OOM notifier (register_oom_notifier): called before the OOM killer picks a victim;
  // returns the pages it freed. Any pages freed spare the victim.
  virtual std::uint64_t on_oom() { return 0; }
};

}  // namespace memvirt
