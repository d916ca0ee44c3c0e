// file_reader: a program that reads (or writes) a set of files through the guest's page
// cache, sequentially or at random, for a number of passes, at a rate or as fast as the disk
// and the vCPU allow. Files of one image hold the same contents in every VM.
#pragma once

#include <optional>
#include <vector>

#include "workload/workload.hpp"

namespace memvirt {

class FileReader final : public Workload {
 public:
  enum class Pattern : std::uint8_t { kSequential, kRandom };
  struct Config {
    std::uint64_t files = 1;
    Bytes size;          // each file
    bool shared = true;  // contents of the image, the same in every VM
    Pattern pattern = Pattern::kSequential;
    Bytes request{128 * 1024};
    std::int64_t passes = 1;
    Bytes rate{0};  // bytes per second; 0: as fast as it can
    Duration start{};
    bool write = false;  // write the files instead (their pages become dirty)
    std::string image;   // content identity of shared files
  };
  static Config config_from(Params& p);
  explicit FileReader(Config c) : cfg_(std::move(c)) {}

  void start(const WorkloadEnv& env) override;
  [[nodiscard]] const WorkloadStats& stats() const override { return stats_; }

 private:
  void step();
  void next_request();

  Config cfg_;
  WorkloadEnv env_;
  WorkloadStats stats_;
  std::vector<FileId> files_;
  std::optional<Rng> rng_;
  std::optional<UniqueContent> content_;
  std::uint32_t pid_ = 0;
  std::uint64_t pass_ = 0, file_ = 0, offset_ = 0;  // position of the current request
  std::uint64_t done_in_request_ = 0, request_pages_ = 0;
  TimePoint started_{};
  TimePoint request_started_{};
};

}  // namespace memvirt
