// kernel_build: `make clean; make -jN` over a measured Linux build (seed 003 runs
// `make clean; make -j8; make clean; make -j8` in every guest). The source tree is files of
// the guest's filesystem, cold on disk; each compile unit is a process that reads its source
// and headers through the page cache, grows its anonymous memory while it computes its
// measured CPU (reading a measured share of its older pages again in every step), frees it
// and writes its object; archive and link steps read their inputs once those are made. At
// most `jobs` steps run at once, sharing the guest's vCPUs. The
// profile (workload/kernel_build_profile.hpp) gives every size, CPU time and memory; what
// the workload assumes beyond it is written beside each choice in kernel_build.cpp and in
// docs/kernel-build-profile.md.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "workload/kernel_build_profile.hpp"
#include "workload/workload.hpp"

namespace memvirt {

class KernelBuild final : public Workload {
 public:
  // The median share of a compiler's maximum RSS that is anonymous memory, measured in
  // profiles/kernel-build/linux-6.1-x86_64-defconfig-rss-split.json
  // (summary.anon_share_of_max_rss.median = mean = 0.6599, 47 units).
  static constexpr double kMeasuredAnonFraction = 0.66;
  // Measured in profiles/kernel-build/linux-6.1-x86_64-defconfig-reuse.json (94 units):
  // the share of a compiler's anonymous pages, those it had when a slice of its CPU time
  // began, that it references again during the slice, with cc1's life cut in eighths of its
  // CPU time (the default ramp_steps): pass reuse-slices8, reref_share_pooled = 0.3363.
  static constexpr double kMeasuredReuse = 0.34;
  // Of the pages referenced in one such slice, the share referenced again in the next:
  // derived.persistence[] for slices 8 from 4 (0.764; from 16 to 8: 0.780).
  static constexpr double kMeasuredReusePersistence = 0.76;
  static constexpr const char* kDefaultProfile =
      "profiles/kernel-build/linux-6.1-x86_64-defconfig-subset.json";

  struct Config {
    std::shared_ptr<const KernelBuildProfile> profile;
    std::string image = "linux-source";  // content identity of the tree (same in every VM)
    std::uint32_t jobs = 8;
    std::uint32_t builds = 2;
    bool clean_first = true;
    double anon_fraction = kMeasuredAnonFraction;
    double cpu_scale = 1.0;
    bool make_overhead = true;
    std::uint32_t ramp_steps = 8;
    double reuse = kMeasuredReuse;
    Bytes request{128 * 1024};
    Duration start{};
    std::uint64_t chunk_pages = 0;  // touch_chunk

    // The filesystem space the workload needs: the tree and one build's outputs.
    [[nodiscard]] Bytes disk_needed() const;
  };
  // Reads the keys and loads the profile (relative to the scenario file that names it, then
  // the working directory, then the source tree).
  static Config config_from(Params& p);
  explicit KernelBuild(Config c);

  void start(const WorkloadEnv& env) override;
  [[nodiscard]] const WorkloadStats& stats() const override { return stats_; }

  // For tests: the guest files of the tree (by profile tree index) and each step's output
  // and .cmd file of the latest build that wrote them (nullopt: none now).
  [[nodiscard]] const std::vector<FileId>& tree_files() const { return tree_; }
  [[nodiscard]] std::optional<FileId> output(std::size_t step) const;
  [[nodiscard]] std::optional<FileId> cmd_file(std::size_t step) const;
  [[nodiscard]] std::uint32_t builds_failed() const { return builds_failed_; }

 private:
  enum class Phase : std::uint8_t { kRead, kCompute, kRelease, kWrite };
  struct Job {
    std::uint32_t step = 0;
    std::uint32_t pid = 0;
    Phase phase = Phase::kRead;
    std::size_t read = 0;      // index into the step's reads
    std::uint64_t offset = 0;  // page of the file being read or written
    std::uint64_t region = 0;  // the anonymous memory
    std::uint64_t anon_pages = 0;
    std::uint64_t touched = 0;
    std::uint32_t ramp = 0;          // ramp steps done
    std::uint64_t key = 0;           // the unit's identity, for its choice of pages
    bool slice_begun = false;        // this ramp step's re-accesses are set up
    std::uint64_t base = 0;          // pages touched before this ramp step
    std::uint64_t scan = 0;          // of them, the next to consider for a re-access
    std::uint32_t idle_retries = 0;  // calls in a row that did nothing
    bool opened = false;             // the file being written was created or truncated
    bool writing_cmd = false;        // the output is written; now the .cmd file
  };
  static constexpr std::uint32_t kNone = UINT32_MAX;

  void next_command();
  void make_clean();
  void begin_build();
  void run_make(CpuTime cpu, std::function<void()> then);
  // Starts steps while jobs are free; ends the build when none is left. Reentrant calls
  // (a step that fails at once) are folded into the running one.
  void dispatch();
  void dispatch_once();
  void launch(std::uint32_t step);
  void advance(std::uint32_t slot);
  void read_phase(std::uint32_t slot);
  void compute_phase(std::uint32_t slot);
  void write_phase(std::uint32_t slot);
  // Runs `work` for the job's process, then (after I/O `wait`, if any) advances it.
  void run_then(std::uint32_t slot, CpuTime work, std::uint64_t wait = 0);
  void finish_job(std::uint32_t slot, bool ok);
  [[nodiscard]] FileId read_file_of(std::uint32_t ref) const;
  [[nodiscard]] CpuTime program_cpu(const KernelBuildProfile::Step& s) const;
  [[nodiscard]] Fingerprint output_content(std::uint64_t hash, std::uint64_t page,
                                           ContentClass cls) const;
  [[nodiscard]] bool alive(std::uint32_t pid) const;

  Config cfg_;
  const KernelBuildProfile* prof_ = nullptr;
  WorkloadEnv env_;
  WorkloadStats stats_;
  std::optional<UniqueContent> content_;
  std::uint64_t request_pages_ = 1;
  std::uint64_t cmd_pages_ = 0;
  std::uint64_t output_base_ = 0;

  std::vector<FileId> tree_;
  std::vector<std::uint32_t> outputs_, cmds_;  // per step: FileId value or kNone

  // The command sequence: make clean (if clean_first), then the build, `builds` times.
  std::uint32_t build_ = 0;  // builds begun
  bool cleaned_ = false;     // a make clean ran before this build
  std::uint32_t builds_failed_ = 0;
  // The build in progress.
  std::size_t next_step_ = 0;
  std::vector<std::uint32_t> waiting_;  // links whose inputs are not all made yet
  std::vector<std::uint32_t> inputs_left_;
  std::uint32_t running_ = 0;
  bool in_build_ = false;
  bool failed_ = false;
  bool dispatching_ = false, dispatch_again_ = false;
  std::vector<Job> jobs_;
  std::vector<std::uint32_t> free_slots_;
};

}  // namespace memvirt
