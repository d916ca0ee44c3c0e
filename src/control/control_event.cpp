#include "control/control_event.hpp"

#include <fmt/format.h>

#include <cmath>
#include <ctime>
#include <string_view>

namespace memvirt {
namespace {

std::string mib(Bytes b) {
  return fmt::format("{:.0f} MiB", b.mib());
}

std::string ksm_text(bool run, std::uint64_t pages, Duration sleep) {
  if (!run) return "stopped";
  return fmt::format("run, {} pages per {} ms", pages, sleep.ns() / 1'000'000);
}

std::string utc(std::chrono::system_clock::time_point at) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

nlohmann::json ksm_json(bool run, std::uint64_t pages, Duration sleep) {
  return {{"run", run}, {"pages_to_scan", pages}, {"sleep_ms", sleep.ns() / 1'000'000}};
}

}  // namespace

ControlEvent control_event(ControlEvent::Kind kind, std::string vm, std::string text) {
  ControlEvent e;
  e.kind = kind;
  e.vm = std::move(vm);
  e.text = std::move(text);
  return e;
}

const char* control_event_kind(ControlEvent::Kind k) {
  switch (k) {
    case ControlEvent::Kind::kStart:
      return "start";
    case ControlEvent::Kind::kJoin:
      return "join";
    case ControlEvent::Kind::kLeave:
      return "leave";
    case ControlEvent::Kind::kSkip:
      return "skip";
    case ControlEvent::Kind::kRecover:
      return "recover";
    case ControlEvent::Kind::kNotice:
      return "notice";
    case ControlEvent::Kind::kError:
      return "error";
    case ControlEvent::Kind::kBalloon:
      return "balloon";
    case ControlEvent::Kind::kKsm:
      return "ksm";
    case ControlEvent::Kind::kStop:
      return "stop";
  }
  return "?";
}

std::string control_event_text(const ControlEvent& e) {
  const std::string who = e.vm.empty() ? std::string("host") : e.vm;
  // Errors from QMP and the reply parsers start with the guest's name already.
  std::string_view text = e.text;
  if (text.rfind(who + ": ", 0) == 0) text.remove_prefix(who.size() + 2);
  std::string line;
  switch (e.kind) {
    case ControlEvent::Kind::kBalloon:
      line = fmt::format("{}: balloon {} -> {}", who, mib(e.from), mib(e.to));
      if (e.requested != e.to) line += fmt::format(" (asked {}, clamped)", mib(e.requested));
      line += ": " + e.text;
      break;
    case ControlEvent::Kind::kKsm:
      line = fmt::format("host: KSM {} -> {}: {}",
                         ksm_text(e.ksm_from.run, e.ksm_from.pages_to_scan, e.ksm_from.sleep),
                         ksm_text(e.ksm_to.run, e.ksm_to.pages_to_scan, e.ksm_to.sleep), e.text);
      break;
    case ControlEvent::Kind::kSkip:
      line = fmt::format("{}: skipped: {}", who, text);
      break;
    case ControlEvent::Kind::kLeave:
      line = fmt::format("{}: dropped: {}", who, text);
      break;
    case ControlEvent::Kind::kError:
      line = fmt::format("{}: error: {}", who, text);
      break;
    default:
      line = e.vm.empty() ? e.text : fmt::format("{}: {}", e.vm, text);
      break;
  }
  if (e.dry_run) line += " [dry run: not done]";
  if (!e.failed.empty()) line += " [failed: " + e.failed + "]";
  return line;
}

nlohmann::json control_event_json(const ControlEvent& e, Duration t,
                                  std::chrono::system_clock::time_point at) {
  nlohmann::json j = {{"time", utc(at)},
                      {"t", std::round(t.seconds() * 1000) / 1000},
                      {"event", control_event_kind(e.kind)}};
  if (!e.vm.empty()) j["vm"] = e.vm;
  switch (e.kind) {
    case ControlEvent::Kind::kBalloon:
      j["from"] = e.from.value();
      j["requested"] = e.requested.value();
      j["to"] = e.to.value();
      j["reason"] = e.text;
      break;
    case ControlEvent::Kind::kKsm:
      j["from"] = ksm_json(e.ksm_from.run, e.ksm_from.pages_to_scan, e.ksm_from.sleep);
      j["to"] = ksm_json(e.ksm_to.run, e.ksm_to.pages_to_scan, e.ksm_to.sleep);
      j["reason"] = e.text;
      break;
    default:
      j["message"] = e.text;
      break;
  }
  if (e.kind == ControlEvent::Kind::kBalloon || e.kind == ControlEvent::Kind::kKsm) {
    j["dry_run"] = e.dry_run;
    if (!e.failed.empty()) j["failed"] = e.failed;
  }
  return j;
}

}  // namespace memvirt
