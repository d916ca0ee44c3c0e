#include "reclaim/balloon.hpp"
#include "reclaim/hinting.hpp"
#include "reclaim/ksm.hpp"
#include "reclaim/mechanism.hpp"
#include "reclaim/pageone.hpp"
#include "reclaim/ppr.hpp"
#include "reclaim/reporting.hpp"
#include "reclaim/selfballoon.hpp"
#include "reclaim/tmem_frontends.hpp"
#include "reclaim/zswap.hpp"

namespace memvirt {

MechanismRegistry make_mechanism_registry() {
  MechanismRegistry r("mechanism", "impl");
  r.add<Ppr>("ppr");
  r.add<Ksm>("ksm");
  r.add<PageOne>("pageone");
  r.add<FreePageReporting>("reporting");
  r.add<Balloon>("balloon");
  r.add<FreePageHinting>("hinting");
  r.add<TmemFrontends>("tmem");
  r.add<SelfBalloon>("selfballoon");
  r.add<Zswap>("zswap");
  return r;
}

}  // namespace memvirt
