// A measured Linux build, as the kernel_build workload replays it: the files the build reads
// (headers, sources), its steps (compile units and archive/link steps) in the order they
// started, and the measured CPU of what make does besides them. Loaded from a build profile
// of profiles/kernel-build/ (format "memvirt-kernel-build-profile/1", described in that
// folder's README.md and in docs/kernel-build-profile.md).
//
// Contract: load_kernel_build_profile() returns a profile whose every step reads only tree
// files or outputs of steps before it in `steps`, and whose outputs are distinct paths; a
// file that cannot be read, malformed JSON, a missing key or a value of the wrong type or
// range is an InputError naming the file (with the line, for a JSON syntax error) and the
// field ("units[12].cpu_s").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace memvirt {

struct KernelBuildProfile {
  // A file of the source tree the build reads: a header, a unit's source, or a link input no
  // step makes (a linker script made by `make prepare`).
  struct TreeFile {
    std::uint64_t bytes = 0;
    std::uint64_t path_hash = 0;  // name_hash of its path: its identity in every VM
  };
  // A compile unit (one gcc call: source + headers -> object) or an archive/link step
  // (inputs -> archive or linked object).
  struct Step {
    bool link = false;
    std::uint64_t out_bytes = 0;
    std::uint64_t out_hash = 0;  // name_hash of the output's path
    double cpu_s = 0;            // measured CPU (user + system) of the step's processes
    std::uint64_t max_rss_kib = 0;
    // What it reads, in order: a tree file's index, or kStepOutput | the index of the step
    // whose output it is (always an earlier step).
    std::vector<std::uint32_t> reads;
    // The links that read this step's output, and how many step outputs a link reads.
    std::vector<std::uint32_t> readers;
    std::uint32_t step_inputs = 0;
  };
  static constexpr std::uint32_t kStepOutput = 1U << 31;

  std::string file;
  std::vector<TreeFile> tree;
  std::vector<Step> steps;  // units and links merged by start_s (units first at a tie)
  std::size_t units = 0, links = 0;

  // Measured CPU outside the compilers and archivers (zero when not loaded):
  double clean_cpu_s = 0;       // phases.clean: one `make clean`
  double prepare_cpu_s = 0;     // phases.prepare_after_clean: what a build redoes after a clean
  double rest_cpu_s = 0;        // totals.cpu_rest_s + cpu_other_compiler_calls_s: make, shells,
                                // objtool, fixdep and gcc's probes over the whole build
  std::uint64_t cmd_bytes = 0;  // the mean kbuild .cmd file (clean.deleted_by_ext[".cmd"])

  // Sizes in 4 KiB pages, as the guest's filesystem stores them.
  [[nodiscard]] std::uint64_t tree_pages() const;
  [[nodiscard]] std::uint64_t output_pages() const;  // one build's outputs
};

// Reads `file`. With `overhead`, also the measured CPU of make clean, make prepare and the
// rest of make (phases, totals) and the .cmd size (clean), which are then required.
KernelBuildProfile load_kernel_build_profile(const std::string& file, bool overhead);

// Pages of a file of `bytes` (a partial last page counts).
inline std::uint64_t file_pages(std::uint64_t bytes) {
  return (bytes + kPageSize - 1) / kPageSize;
}

}  // namespace memvirt
