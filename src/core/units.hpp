// Parsing of sizes ("4GiB", "150MB", "4096") and durations ("30min", "2s", "20ms") as they
// appear in scenario files and on the command line.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/types.hpp"

namespace memvirt {

// Decimal (kB, MB, GB, TB) and binary (KiB, MiB, GiB, TiB) units; a bare number is bytes.
// Returns nullopt with a reason in *why on malformed, negative or overflowing input.
std::optional<Bytes> parse_bytes(std::string_view text, std::string* why);

// Units ns, us, ms, s, min, h, d; a bare number is seconds.
std::optional<Duration> parse_duration(std::string_view text, std::string* why);

std::string format_bytes(Bytes b);
std::string format_duration(Duration d);

}  // namespace memvirt
