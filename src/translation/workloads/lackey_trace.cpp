#include "translation/workloads/lackey_trace.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace memvirt::translation {

namespace {

[[noreturn]] void bad(const std::string& file, int line, const std::string& field,
                      const std::string& why) {
  throw InputError(SourcePlace{file, line, field}, why);
}

}  // namespace

AddressTrace parse_lackey_trace(const std::string& file, const std::string& text) {
  AddressTrace t;
  t.file = file;
  std::size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#' || line.substr(0, 2) == "==") continue;
    // "I  addr,size" or " X addr,size"
    char op = 0;
    std::string_view rest;
    if (line[0] == 'I' && line.size() >= 3 && line[1] == ' ' && line[2] == ' ') {
      op = 'I';
      rest = line.substr(3);
    } else if (line[0] == ' ' && line.size() >= 3 && line[2] == ' ') {
      op = line[1];
      rest = line.substr(3);
      if (op != 'L' && op != 'S' && op != 'M') {
        bad(file, line_no, "operation", std::string("expected L, S, M or I, got '") + op + "'");
      }
    } else {
      bad(file, line_no, "operation", "expected ' L addr,size', ' S', ' M' or 'I  addr,size'");
    }
    const std::size_t comma = rest.find(',');
    if (comma == std::string_view::npos) bad(file, line_no, "address", "missing ',size'");
    const std::string_view addr_text = rest.substr(0, comma);
    const std::string_view size_text = rest.substr(comma + 1);
    std::uint64_t addr = 0;
    auto [p1, e1] =
        std::from_chars(addr_text.data(), addr_text.data() + addr_text.size(), addr, 16);
    if (addr_text.empty() || e1 != std::errc{} || p1 != addr_text.data() + addr_text.size()) {
      bad(file, line_no, "address", "not a hexadecimal address: '" + std::string(addr_text) + "'");
    }
    if (addr >= (1ULL << 48)) bad(file, line_no, "address", "beyond the 48-bit address space");
    unsigned size = 0;
    auto [p2, e2] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size);
    if (size_text.empty() || e2 != std::errc{} || p2 != size_text.data() + size_text.size() ||
        size == 0) {
      bad(file, line_no, "size", "not a positive decimal size: '" + std::string(size_text) + "'");
    }
    if (op == 'I') {
      ++t.instruction_fetches;
    } else {
      t.addresses.push_back(addr);
    }
  }
  if (t.addresses.empty()) bad(file, 0, "trace", "no data references (L, S or M lines)");
  return t;
}

AddressTrace load_lackey_trace(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(SourcePlace{file, 0, "trace"}, "cannot open trace file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_lackey_trace(file, ss.str());
}

}  // namespace memvirt::translation
