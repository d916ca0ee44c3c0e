#include "control/guest_replies.hpp"

#include <fmt/format.h>

#include <limits>

#include "core/units.hpp"

namespace memvirt {
namespace {

std::string shorten(const std::string& s) {
  return s.size() <= 120 ? s : s.substr(0, 120) + "...";
}

[[noreturn]] void fail(const std::string& vm, const std::string& command, const std::string& field,
                       const std::string& what) {
  throw GuestReplyError(fmt::format("{}: {}: {}: {}", vm, command, field, what));
}

const nlohmann::json& object_reply(const std::string& vm, const std::string& command,
                                   const nlohmann::json& reply) {
  if (!reply.is_object()) {
    throw GuestReplyError(
        fmt::format("{}: {}: expected an object, got {}", vm, command, shorten(reply.dump())));
  }
  return reply;
}

// A JSON integer as a signed value; QEMU's all-ones "not reported" (2^64 - 1) reads as -1.
std::optional<std::int64_t> integer_of(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u == std::numeric_limits<std::uint64_t>::max()) return -1;
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<std::int64_t>();
  return std::nullopt;
}

// The field `key` of `obj` as an integer; `path` names it in errors.
std::int64_t integer_field(const std::string& vm, const std::string& command,
                           const nlohmann::json& obj, const std::string& key,
                           const std::string& path) {
  const auto it = obj.find(key);
  if (it == obj.end()) fail(vm, command, path, "missing");
  const std::optional<std::int64_t> v = integer_of(*it);
  if (!v) fail(vm, command, path, fmt::format("not an integer: {}", shorten(it->dump())));
  return *v;
}

std::string size(std::int64_t v) {
  return format_bytes(Bytes{static_cast<std::uint64_t>(v)});
}

}  // namespace

Bytes parse_memory_size_summary(const std::string& vm, const nlohmann::json& reply) {
  const std::string cmd = "query-memory-size-summary";
  const nlohmann::json& r = object_reply(vm, cmd, reply);
  const std::int64_t base = integer_field(vm, cmd, r, "base-memory", "base-memory");
  if (base <= 0) fail(vm, cmd, "base-memory", fmt::format("is not positive ({})", base));
  std::int64_t plugged = 0;
  if (r.contains("plugged-memory")) {
    plugged = integer_field(vm, cmd, r, "plugged-memory", "plugged-memory");
    if (plugged < 0) fail(vm, cmd, "plugged-memory", fmt::format("is negative ({})", plugged));
  }
  if (plugged > std::numeric_limits<std::int64_t>::max() - base) {
    fail(vm, cmd, "plugged-memory", "base-memory + plugged-memory overflows");
  }
  return Bytes{static_cast<std::uint64_t>(base + plugged)};
}

Bytes parse_query_balloon(const std::string& vm, const nlohmann::json& reply, Bytes memory) {
  const std::string cmd = "query-balloon";
  const nlohmann::json& r = object_reply(vm, cmd, reply);
  const std::int64_t actual = integer_field(vm, cmd, r, "actual", "actual");
  if (actual < 0) fail(vm, cmd, "actual", fmt::format("is negative ({})", actual));
  if (actual == 0) fail(vm, cmd, "actual", "is 0: a running guest has memory");
  if (static_cast<std::uint64_t>(actual) > memory.value()) {
    fail(vm, cmd, "actual",
         fmt::format("{} is more than the guest's memory, {}", size(actual), format_bytes(memory)));
  }
  return Bytes{static_cast<std::uint64_t>(actual)};
}

GuestStatsReading parse_guest_stats(const std::string& vm, const nlohmann::json& reply,
                                    Bytes memory, std::int64_t unix_now) {
  const std::string cmd = "qom-get guest-stats";
  const nlohmann::json& r = object_reply(vm, cmd, reply);
  const std::int64_t last = integer_field(vm, cmd, r, "last-update", "last-update");
  if (last < 0) fail(vm, cmd, "last-update", fmt::format("is negative ({})", last));
  if (last > unix_now) {
    fail(vm, cmd, "last-update",
         fmt::format("{} is in the future (now {}, {} s ahead)", last, unix_now, last - unix_now));
  }
  const auto s = r.find("stats");
  if (s == r.end()) fail(vm, cmd, "stats", "missing");
  if (!s->is_object()) {
    fail(vm, cmd, "stats", fmt::format("expected an object, got {}", shorten(s->dump())));
  }
  GuestStatsReading out;
  // Every statistic is checked, even before the first report, so a broken reply shows at once.
  auto stat = [&](const char* name) -> std::optional<std::uint64_t> {
    const std::int64_t v = integer_field(vm, cmd, *s, name, fmt::format("stats.{}", name));
    if (v == -1) {
      out.unreported.emplace_back(name);
      return std::nullopt;
    }
    if (v < 0) fail(vm, cmd, fmt::format("stats.{}", name), fmt::format("is negative ({})", v));
    return static_cast<std::uint64_t>(v);
  };
  const auto swap_in = stat("stat-swap-in");
  const auto swap_out = stat("stat-swap-out");
  const auto major = stat("stat-major-faults");
  const auto minor = stat("stat-minor-faults");
  const auto free = stat("stat-free-memory");
  const auto total = stat("stat-total-memory");
  const auto available = stat("stat-available-memory");
  const auto caches = stat("stat-disk-caches");
  if (last == 0) {
    out.unreported.clear();  // nothing was reported yet: nothing was left out either
    return out;
  }
  auto no_more_than = [&](const char* name, std::optional<std::uint64_t> v, std::uint64_t limit,
                          const std::string& what) {
    if (v && *v > limit) {
      fail(vm, cmd, fmt::format("stats.{}", name),
           fmt::format("{} is more than {}, {}", format_bytes(Bytes{*v}), what,
                       format_bytes(Bytes{limit})));
    }
  };
  no_more_than("stat-total-memory", total, memory.value(), "the guest's memory");
  if (total) {
    no_more_than("stat-free-memory", free, *total, "stat-total-memory");
    no_more_than("stat-available-memory", available, *total, "stat-total-memory");
    no_more_than("stat-disk-caches", caches, *total, "stat-total-memory");
  }
  if (!total || !free || !available) return out;
  GuestMemoryStats st;
  st.age = Duration::seconds(static_cast<double>(unix_now - last));
  st.total = Bytes{*total};
  st.free = Bytes{*free};
  st.available = Bytes{*available};
  st.caches = Bytes{caches.value_or(0)};
  st.swap_in_bytes = swap_in.value_or(0);
  st.swap_out_bytes = swap_out.value_or(0);
  st.major_faults = major.value_or(0);
  st.minor_faults = minor.value_or(0);
  out.stats = st;
  return out;
}

std::int64_t parse_polling_interval(const std::string& vm, const nlohmann::json& reply) {
  const std::string cmd = "qom-get guest-stats-polling-interval";
  const std::optional<std::int64_t> v = integer_of(reply);
  if (!v) fail(vm, cmd, "value", fmt::format("not an integer: {}", shorten(reply.dump())));
  if (*v < 0) fail(vm, cmd, "value", fmt::format("is negative ({})", *v));
  return *v;
}

bool parse_deflate_on_oom(const std::string& vm, const nlohmann::json& reply) {
  if (!reply.is_boolean()) {
    fail(vm, "qom-get deflate-on-oom", "value",
         fmt::format("not a boolean: {}", shorten(reply.dump())));
  }
  return reply.get<bool>();
}

}  // namespace memvirt
