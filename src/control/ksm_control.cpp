#include "control/ksm_control.hpp"

#include <stdexcept>

namespace memvirt {

KsmControl::KsmControl(KsmSysfs fs, std::optional<KsmStateStore> store) : fs_(std::move(fs)) {
  for (const char* knob : {"run", "pages_to_scan", "sleep_millisecs"}) {
    if (!fs_.has(knob)) {
      throw std::runtime_error((fs_.root() / knob).string() +
                               " does not exist (a kernel without KSM?)");
    }
  }
  if (!store) return;
  std::string why;
  if (!fs_.available(why)) throw std::runtime_error(why);
  // No settings yet: the guard recovers what a dead run left and saves each original as the
  // policy first changes it.
  guard_ = std::make_unique<KsmSettingsGuard>(fs_, KsmSettingsGuard::Settings{}, std::move(*store));
  recovered_ = guard_->recovered();
}

KsmObservation KsmControl::read() const {
  KsmObservation k;
  k.run = fs_.read_number("run") == 1;
  k.pages_to_scan = fs_.read_number("pages_to_scan");
  k.sleep = Duration::millis(static_cast<std::int64_t>(fs_.read_number("sleep_millisecs")));
  k.pages_shared = fs_.read_number("pages_shared");
  k.pages_sharing = fs_.read_number("pages_sharing");
  k.full_scans = fs_.read_number("full_scans");
  return k;
}

void KsmControl::apply(const KsmObservation& now, const KsmTuning& t) {
  if (!guard_) throw std::logic_error("KSM control is read-only (dry run)");
  if (!t.run) {
    if (now.run) guard_->set("run", "0");
    return;
  }
  if (t.pages_to_scan != now.pages_to_scan) {
    guard_->set("pages_to_scan", std::to_string(t.pages_to_scan));
  }
  const std::int64_t sleep_ms = t.sleep.ns() / 1'000'000;
  if (t.sleep != now.sleep && sleep_ms >= 0) {
    guard_->set("sleep_millisecs", std::to_string(sleep_ms));
  }
  if (!now.run) guard_->set("run", "1");
}

std::vector<std::string> KsmControl::restore() {
  if (!guard_) return {};
  return guard_->restore();
}

}  // namespace memvirt
