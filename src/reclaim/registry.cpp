#include "reclaim/balloon.hpp"
#include "reclaim/hinting.hpp"
#include "reclaim/ksm.hpp"
#include "reclaim/mechanism.hpp"
#include "reclaim/pageone.hpp"
#include "reclaim/ppr.hpp"
#include "reclaim/reporting.hpp"

namespace memvirt {

MechanismFactory make_mechanism_factory(Params p) {
  const std::string impl = p.choice("impl", "", {"ppr", "ksm", "pageone", "reporting", "balloon", "hinting"}, "mechanism");
  if (impl == "ppr") {
    const PprConfig c = Ppr::config_from(p);
    return [c] { return std::make_unique<Ppr>(c); };
  }
  if (impl == "hinting") {
    const HintingConfig c = FreePageHinting::config_from(p);
    return [c] { return std::make_unique<FreePageHinting>(c); };
  }
  if (impl == "balloon") {
    const BalloonConfig c = Balloon::config_from(p);
    return [c] { return std::make_unique<Balloon>(c); };
  }
  if (impl == "reporting") {
    const ReportingConfig c = FreePageReporting::config_from(p);
    return [c] { return std::make_unique<FreePageReporting>(c); };
  }
  if (impl == "ksm") {
    const KsmConfig c = Ksm::config_from(p);
    return [c] { return std::make_unique<Ksm>(c); };
  }
  const PageOneConfig c = PageOne::config_from(p);
  return [c] { return std::make_unique<PageOne>(c); };
}

}  // namespace memvirt
