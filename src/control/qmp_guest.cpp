#include "control/qmp_guest.hpp"

#include <filesystem>

namespace memvirt {

QmpGuest::QmpGuest(std::string name, std::string socket, QmpClient client, GuestBounds bounds)
    : name_(std::move(name)),
      socket_(std::move(socket)),
      qmp_(std::move(client)),
      pid_(qmp_.peer_pid()),
      bounds_(bounds) {
  qmp_.set_name(name_);
}

std::string QmpGuest::name_of(QmpClient& client, const std::string& socket) {
  const nlohmann::json r = client.execute("query-name");
  if (r.is_object() && r.contains("name") && r["name"].is_string() &&
      !r["name"].get<std::string>().empty()) {
    return r["name"].get<std::string>();
  }
  std::filesystem::path p(socket);
  if (p.extension() == ".sock") p.replace_extension();
  return p.filename().string();
}

QmpGuest::Reading QmpGuest::read(const std::function<std::int64_t()>& unix_now) {
  Reading r;
  r.memory = memory();
  r.actual = parse_query_balloon(name_, qmp_.execute("query-balloon"), r.memory);
  const nlohmann::json stats =
      qmp_.execute("qom-get", {{"path", kBalloonQomPath}, {"property", "guest-stats"}});
  r.stats = parse_guest_stats(name_, stats, r.memory, unix_now());
  return r;
}

Bytes QmpGuest::memory() {
  return parse_memory_size_summary(name_, qmp_.execute("query-memory-size-summary"));
}

void QmpGuest::set_balloon(Bytes target) {
  qmp_.execute("balloon", {{"value", target.value()}});
  target_ = target;
}

std::int64_t QmpGuest::polling_interval() {
  return parse_polling_interval(
      name_, qmp_.execute("qom-get", {{"path", kBalloonQomPath},
                                      {"property", "guest-stats-polling-interval"}}));
}

void QmpGuest::set_polling_interval(std::int64_t seconds) {
  const std::int64_t before = polling_interval();
  qmp_.execute("qom-set", {{"path", kBalloonQomPath},
                           {"property", "guest-stats-polling-interval"},
                           {"value", seconds}});
  if (!polling_before_) polling_before_ = before;
}

bool QmpGuest::deflate_on_oom() {
  return parse_deflate_on_oom(
      name_, qmp_.execute("qom-get", {{"path", kBalloonQomPath}, {"property", "deflate-on-oom"}}));
}

void QmpGuest::restore_polling() {
  if (!polling_before_) return;
  qmp_.execute("qom-set", {{"path", kBalloonQomPath},
                           {"property", "guest-stats-polling-interval"},
                           {"value", *polling_before_}});
  polling_before_.reset();
}

}  // namespace memvirt
