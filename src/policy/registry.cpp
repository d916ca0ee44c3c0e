#include "policy/controller.hpp"
#include "policy/dmc.hpp"
#include "policy/dynamic_memory.hpp"
#include "policy/ksmtuned.hpp"
#include "policy/mom.hpp"
#include "policy/partition.hpp"
#include "policy/policy.hpp"
#include "policy/senpai.hpp"

namespace memvirt {

PolicyRegistry make_policy_registry() {
  PolicyRegistry r("policy", "impl");
  r.add<Partition>("partition");
  r.add<Dmc>("dmc");
  r.add<Mom>("mom");
  r.add<Ksmtuned>("ksmtuned");
  r.add<DynamicMemory>("dynamic_memory");
  r.add<Senpai>("senpai");
  r.add<Controller>("memvirt");
  return r;
}

}  // namespace memvirt
