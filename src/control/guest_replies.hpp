// What QEMU answers about one guest's memory, read defensively: every reply `memvirt control`
// and the lab act on goes through these parsers, which either return values that make sense
// or throw GuestReplyError naming the VM, the command and the field. A reply that does not
// make sense (a missing field, a wrong type, a negative or impossible size, stats from the
// future) is never read as 0.
//
// Replies (QEMU's qapi/machine.json and hw/virtio/virtio-balloon.c):
//   query-memory-size-summary  {"base-memory": bytes, "plugged-memory": bytes (optional)}
//   query-balloon              {"actual": bytes}: the memory the guest has now, the balloon
//                              taken out of what it booted with plus what was plugged
//   qom-get <balloon> guest-stats
//                              {"stats": {"stat-swap-in": ..., ...}, "last-update": unix s}
// In guest-stats, swap and memory are bytes, faults are counts; a statistic the guest did not
// report is all ones: 18446744073709551615 from QEMU 7.2, whose statistics are unsigned, -1
// from older QEMU, which wrote them signed. last-update is 0 until the guest's first report.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "policy/policy.hpp"

namespace memvirt {

// "vm1: query-balloon: actual: is negative (-4096)".
class GuestReplyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The guest's memory with an empty balloon: base-memory plus plugged-memory when present.
Bytes parse_memory_size_summary(const std::string& vm, const nlohmann::json& reply);

// The balloon's actual size; must be positive and at most `memory`.
Bytes parse_query_balloon(const std::string& vm, const nlohmann::json& reply, Bytes memory);

// The guest's stats report as a policy reads it, or why it cannot be used.
struct GuestStatsReading {
  std::optional<GuestMemoryStats> stats;  // nullopt: no report yet, or one without memory
  std::vector<std::string> unreported;    // statistics the guest left out (-1), by QEMU name
};

// Reads guest-stats at `unix_now` (seconds): last-update 0 is no report yet. The memory
// statistics (total, free, available) are what every policy reads; a report without one of
// them gives no stats, naming what is missing in `unreported`. The counters a guest leaves
// out (swap, faults, caches) read as 0 and are named in `unreported`, so the caller can say
// so. Throws GuestReplyError on a missing field, a field that is not an integer, a negative
// value other than -1, last-update after `unix_now`, or memory statistics larger than
// `memory` or than the guest's total.
GuestStatsReading parse_guest_stats(const std::string& vm, const nlohmann::json& reply,
                                    Bytes memory, std::int64_t unix_now);

// guest-stats-polling-interval (seconds, 0: polling is off).
std::int64_t parse_polling_interval(const std::string& vm, const nlohmann::json& reply);

// The balloon's deflate-on-oom property (true: the guest takes pages back from the balloon
// before its OOM killer ends a process).
bool parse_deflate_on_oom(const std::string& vm, const nlohmann::json& reply);

}  // namespace memvirt
