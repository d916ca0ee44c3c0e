#include "sweep/cells.hpp"

#include <fmt/args.h>

namespace memvirt::sweep {

std::string format_cell(const std::string& format, const CellValues& values) {
  fmt::dynamic_format_arg_store<fmt::format_context> args;
  // The store copies each name and value, so they need not outlive the call.
  for (const auto& [name, value] : values) args.push_back(fmt::arg(name.c_str(), value));
  return fmt::vformat(format, args);
}

}  // namespace memvirt::sweep
