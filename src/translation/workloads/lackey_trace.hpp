// Recorded address traces from real programs, in the output format of valgrind's lackey tool
// (`valgrind --tool=lackey --trace-mem=yes --log-file=T prog`):
//
//   ==1234== Lackey, an example Valgrind tool     <- valgrind messages: skipped
//   I  04000b30,3                                 <- instruction fetch (ITLB): skipped
//    S 1ffefffd08,8                               <- store
//    L 04022e10,8                                 <- load
//    M 0402a5b0,4                                 <- modify (load and store): one reference
//
// Each data line is a space, the operation, a space, the hexadecimal virtual address, a comma
// and the decimal access size. Blank lines and lines starting with '#' are skipped. Anything
// else is an InputError naming the file, line and the field at fault.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memvirt::translation {

struct AddressTrace {
  std::string file;
  std::vector<std::uint64_t> addresses;  // data references in program order
  std::uint64_t instruction_fetches = 0;
};

AddressTrace load_lackey_trace(const std::string& file);
// Parses text as if it were the content of `file` (for tests and pipes).
AddressTrace parse_lackey_trace(const std::string& file, const std::string& text);

}  // namespace memvirt::translation
