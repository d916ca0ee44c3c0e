// Replay of a recorded trace (lackey format, see lackey_trace.hpp). The program's own address
// space is kept: regions are the runs of touched pages (runs closer than 2 MiB merge), and the
// largest is the primary region a guest segment would map.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "translation/workloads/lackey_trace.hpp"
#include "translation/workloads/workload.hpp"

namespace memvirt::translation {
namespace {

class TraceReplay final : public Workload {
 public:
  TraceReplay(AddressTrace trace, bool loop) : trace_(std::move(trace)), loop_(loop) {
    std::vector<std::uint64_t> pages;
    pages.reserve(trace_.addresses.size());
    for (auto a : trace_.addresses) pages.push_back(a >> 12);
    std::sort(pages.begin(), pages.end());
    pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
    constexpr std::uint64_t kMergeGapPages = 512;
    for (std::size_t i = 0; i < pages.size();) {
      std::size_t j = i;
      while (j + 1 < pages.size() && pages[j + 1] - pages[j] <= kMergeGapPages) ++j;
      regions_.push_back(Region{fmt::format("range{}", regions_.size()), Gva{pages[i] << 12},
                                (pages[j] - pages[i] + 1) << 12});
      i = j + 1;
    }
    std::stable_sort(regions_.begin(), regions_.end(),
                     [](const Region& a, const Region& b) { return a.bytes > b.bytes; });
    pages_ = pages.size();
  }
  [[nodiscard]] const std::vector<Region>& regions() const override { return regions_; }
  [[nodiscard]] std::string describe() const override {
    return fmt::format("trace {} ({} data references, {} pages, {} ranges)",
                       std::filesystem::path(trace_.file).filename().string(),
                       trace_.addresses.size(), pages_, regions_.size());
  }
  void run(RefSink& sink) override {
    do {
      for (auto a : trace_.addresses) {
        if (sink.full()) return;
        sink.emit(a);
      }
    } while (loop_);
  }

 private:
  AddressTrace trace_;
  bool loop_;
  std::vector<Region> regions_;
  std::size_t pages_ = 0;
};

}  // namespace

WorkloadFactory make_trace_replay(Params& p, std::uint64_t /*seed*/) {
  std::string file = p.string("file", "", "lackey trace file (relative to the scenario)");
  if (file.empty()) p.fail("file", "a trace file is required");
  const bool loop = p.boolean("loop", true, "replay again from the start until the budget");
  // Relative names resolve beside the scenario file that gives them, then in the working
  // directory.
  const std::filesystem::path beside =
      std::filesystem::path(p.context()->anchor_of(p.path() + ".file")).parent_path() / file;
  if (!std::filesystem::exists(file) && std::filesystem::exists(beside)) file = beside.string();
  if (!std::filesystem::exists(file)) p.fail("file", "trace file '" + file + "' not found");
  return [=] {
    return std::unique_ptr<Workload>(std::make_unique<TraceReplay>(load_lackey_trace(file), loop));
  };
}

}  // namespace memvirt::translation
