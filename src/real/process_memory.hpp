// The process's own memory as the kernel counts it, for checks that the real-memory models'
// accounting matches what the machine sees.
#pragma once

#include <cstdint>

namespace memvirt {

// Resident set size of this process, in bytes (/proc/self/statm).
std::uint64_t process_rss_bytes();

}  // namespace memvirt
