#include "control/qmp_host.hpp"

#include <fmt/format.h>

#include "core/units.hpp"
#include "real/proc_stats.hpp"

namespace memvirt {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::string QmpHost::missing(const PolicyInputs& needs) const {
  std::vector<std::string> lacking;
  if (needs.committed) lacking.emplace_back("the guests' Committed_AS (a guest agent's)");
  if (needs.guest_stall) lacking.emplace_back("the guests' PSI stall time (a guest agent's)");
  if (needs.ksm && src_.ksm == nullptr) lacking.emplace_back("host KSM");
  if (lacking.empty()) return {};
  return "needs " + joined(lacking) + ", which this host does not provide";
}

std::uint32_t QmpHost::add(QmpGuest guest) {
  const std::uint32_t key = next_key_++;
  guests_.emplace(key, Entry(std::move(guest)));
  return key;
}

QmpGuest* QmpHost::guest(std::uint32_t key) {
  const auto it = guests_.find(key);
  return it == guests_.end() ? nullptr : &it->second.guest;
}

std::optional<QmpGuest> QmpHost::remove(std::uint32_t key) {
  const auto it = guests_.find(key);
  if (it == guests_.end()) return std::nullopt;
  std::optional<QmpGuest> g(std::move(it->second.guest));
  guests_.erase(it);
  return g;
}

std::vector<std::uint32_t> QmpHost::keys() const {
  std::vector<std::uint32_t> out;
  for (const auto& [key, e] : guests_) out.push_back(key);
  return out;
}

QmpHost::Observed QmpHost::observe(Duration since_start, const UnixClock& unix_now) {
  Observed out;
  HostObservation h;
  h.since_start = since_start;
  try {
    const ProcMeminfo m = proc_meminfo(src_.proc);
    h.total = m.total;
    h.free = m.free;
    h.cached = m.buffers + m.cached;
    h.memory_stall = proc_memory_pressure(src_.proc);
  } catch (const std::runtime_error& e) {
    out.events.push_back(control_event(ControlEvent::Kind::kError, "", e.what()));
  }
  if (src_.ksm != nullptr) {
    try {
      h.ksm = src_.ksm->read();
    } catch (const std::runtime_error& e) {
      out.events.push_back(
          control_event(ControlEvent::Kind::kError, "", fmt::format("KSM: {}", e.what())));
    }
  }
  std::vector<std::uint32_t> gone;
  for (auto& [key, e] : guests_) {
    if (std::optional<GuestObservation> g = observe_guest(e, key, unix_now, out)) {
      h.guests.push_back(std::move(*g));
    } else if (!e.guest.connected()) {
      gone.push_back(key);
    }
  }
  for (const std::uint32_t key : gone) guests_.erase(key);
  if (h.total.value() != 0) out.host = std::move(h);
  return out;
}

std::optional<GuestObservation> QmpHost::observe_guest(Entry& e, std::uint32_t key,
                                                       const UnixClock& unix_now, Observed& out) {
  QmpGuest& q = e.guest;
  GuestObservation g;
  g.key = key;
  g.name = q.name();
  auto skip = [&](const std::string& why) -> std::optional<GuestObservation> {
    ++out.skipped;
    if (why != e.problem) {
      out.events.push_back(control_event(ControlEvent::Kind::kSkip, q.name(), why));
      e.problem = why;
      e.skipped_ticks = 0;
    }
    ++e.skipped_ticks;
    return std::nullopt;
  };
  QmpGuest::Reading r;
  try {
    r = q.read(unix_now);
  } catch (const QmpDisconnected& x) {
    out.events.push_back(control_event(ControlEvent::Kind::kLeave, q.name(), x.what()));
    return std::nullopt;
  } catch (const QmpError& x) {
    return skip(x.what());
  } catch (const GuestReplyError& x) {
    return skip(x.what());
  }
  std::string why;
  const std::optional<ResolvedBounds> b = resolve_bounds(q.bounds(), r.memory, &why);
  if (!b) return skip(fmt::format("{}: --min/--max/--limit: {}", q.name(), why));
  if (!e.problem.empty()) {
    out.events.push_back(control_event(
        ControlEvent::Kind::kRecover, q.name(),
        fmt::format("replies make sense again after {} skipped ticks", e.skipped_ticks)));
    e.problem.clear();
    e.skipped_ticks = 0;
  }
  const std::string unreported = joined(r.stats.unreported);
  if (unreported != e.unreported) {
    if (!unreported.empty()) {
      out.events.push_back(control_event(
          ControlEvent::Kind::kNotice, q.name(),
          r.stats.stats
              ? fmt::format("the guest does not report {}: read as 0", unreported)
              : fmt::format("the guest does not report {}: its stats are not used", unreported)));
    }
    e.unreported = unreported;
  }
  g.memory = r.memory;
  g.actual = r.actual;
  if (!q.target()) q.assume_target(r.actual);
  g.target = *q.target();
  g.min = b->min;
  g.max = b->max;
  g.stats = r.stats.stats;
  std::optional<Bytes> rss;
  std::string rss_why = "QEMU's pid is unknown (its socket gave no peer credentials)";
  if (q.pid()) {
    try {
      rss = proc_vm_rss(*q.pid(), src_.proc);
      rss_why = fmt::format("{}/{}/status has no VmRSS", src_.proc.string(), *q.pid());
    } catch (const std::runtime_error& x) {
      rss_why = x.what();
    }
  }
  if (!rss && !e.rss_noted) {
    out.events.push_back(control_event(ControlEvent::Kind::kNotice, q.name(),
                                       fmt::format("QEMU's resident size reads 0: {}", rss_why)));
    e.rss_noted = true;
  }
  g.resident = rss.value_or(Bytes{0});
  return g;
}

std::vector<ControlEvent> QmpHost::carry_out(const HostObservation& now, PolicyActions actions,
                                             bool dry_run) {
  std::vector<ControlEvent> out;
  const std::vector<PolicyActions::BalloonRequest> asked = actions.balloons;
  clamp_actions(now, actions);
  // clamp_actions keeps the order and drops only requests for guests not in `now`.
  std::size_t next = 0;
  for (const PolicyActions::BalloonRequest& a : asked) {
    const GuestObservation* g = now.guest(a.guest);
    if (g == nullptr) continue;
    const PolicyActions::BalloonRequest& r = actions.balloons[next++];
    Entry* e = nullptr;
    if (const auto it = guests_.find(r.guest); it != guests_.end()) e = &it->second;
    if (e == nullptr || r.target == g->target) continue;
    ControlEvent ev = control_event(ControlEvent::Kind::kBalloon, g->name, r.reason);
    ev.from = g->target;
    ev.requested = a.target;
    ev.to = r.target;
    ev.dry_run = dry_run;
    if (dry_run) {
      e->guest.assume_target(r.target);
      out.push_back(std::move(ev));
      continue;
    }
    try {
      e->guest.set_balloon(r.target);
      out.push_back(std::move(ev));
    } catch (const QmpDisconnected& x) {
      ev.failed = x.what();
      out.push_back(std::move(ev));
      out.push_back(control_event(ControlEvent::Kind::kLeave, g->name, x.what()));
      guests_.erase(r.guest);
    } catch (const QmpError& x) {
      ev.failed = x.what();
      out.push_back(std::move(ev));
    }
  }
  if (actions.ksm) {
    ControlEvent ev = control_event(ControlEvent::Kind::kKsm, "", actions.ksm_reason);
    ev.ksm_to = *actions.ksm;
    ev.dry_run = dry_run;
    if (src_.ksm == nullptr || !now.ksm) {
      ev.failed = "KSM is not under this host's control";
      out.push_back(std::move(ev));
      return out;
    }
    ev.ksm_from = *now.ksm;
    const KsmTuning& t = *actions.ksm;
    const KsmObservation& k = *now.ksm;
    const bool same =
        t.run == k.run && (!t.run || (t.pages_to_scan == k.pages_to_scan && t.sleep == k.sleep));
    if (same) return out;
    if (!dry_run) {
      try {
        src_.ksm->apply(k, t);
      } catch (const std::exception& x) {
        ev.failed = x.what();
      }
    }
    out.push_back(std::move(ev));
  }
  return out;
}

}  // namespace memvirt
