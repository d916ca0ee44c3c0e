// Whole-file reads and writes for the lab, with errors that name the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace memvirt {

// The file's bytes; LabError naming the path when it cannot be read.
std::string read_file(const std::string& path);
// Writes through a temporary file in the same folder and renames it into place, so a reader
// (another run sharing the image folder) sees the old file or the new one, never a part.
void write_file_atomic(const std::string& path, std::string_view data, unsigned mode = 0644);
// 64-bit content digest (xxh64) as 16 hex digits.
std::string digest_hex(std::string_view data);

}  // namespace memvirt
