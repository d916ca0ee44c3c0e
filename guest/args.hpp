// Arguments of a guest program: key=value pairs after the program name and its tag. The host
// writes every number plain (bytes, nanoseconds), so the guest parses no units. A missing
// required key, a malformed number or a key nothing reads ends the program with an error
// marker: the host then reports which guest and which program failed.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace guest {

class Args {
 public:
  // argv[first..argc) are key=value pairs; `tag` names the program in error markers.
  Args(std::string tag, int argc, char** argv, int first);
  [[nodiscard]] const std::string& tag() const { return tag_; }
  std::uint64_t number(const std::string& key);
  std::uint64_t number(const std::string& key, std::uint64_t def);
  std::string text(const std::string& key);
  std::string text(const std::string& key, const std::string& def);
  // Ends the program with an error marker when a key was given that nothing read.
  void check_all_read() const;

 private:
  std::string tag_;
  std::map<std::string, std::string> values_;
  std::set<std::string> read_;
};

}  // namespace guest
