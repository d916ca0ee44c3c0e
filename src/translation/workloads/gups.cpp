// GUPS (HPCC RandomAccess): table[ran & (size - 1)] ^= ran over a 2^n-word table, ran from
// the HPCC polynomial generator x <- (x << 1) ^ (x < 0 ? 7 : 0). Each update is a load and a
// store of one random word.
#include <fmt/format.h>

#include "translation/workloads/workload.hpp"

namespace memvirt::translation {
namespace {

class Gups final : public Workload {
 public:
  Gups(unsigned log2_words, std::uint64_t seed)
      : table_(std::size_t{1} << log2_words), log2_words_(log2_words) {
    for (std::size_t i = 0; i < table_.size(); ++i) table_[i] = i;  // HPCC initial table
    base_ = heap_.place(table_.size() * sizeof(std::uint64_t));
    regions_ = {heap_.region()};
    ran_ = seed | 1;  // HPCC_starts(n) for a nonzero starting point
  }
  [[nodiscard]] const std::vector<Region>& regions() const override { return regions_; }
  [[nodiscard]] std::string describe() const override {
    return fmt::format("GUPS, 2^{} words ({} MiB table)", log2_words_, (table_.size() * 8) >> 20);
  }
  void run(RefSink& sink) override {
    constexpr std::uint64_t kPoly = 7;
    const std::uint64_t mask = table_.size() - 1;
    while (!sink.full()) {
      for (int i = 0; i < 1024; ++i) {
        ran_ = (ran_ << 1) ^ (static_cast<std::int64_t>(ran_) < 0 ? kPoly : 0);
        const std::uint64_t at = ran_ & mask;
        table_[at] ^= ran_;
        sink.emit(base_ + at * 8);  // load
        sink.emit(base_ + at * 8);  // store
      }
    }
  }

 private:
  std::vector<std::uint64_t> table_;
  unsigned log2_words_;
  HeapLayout heap_;
  std::uint64_t base_ = 0;
  std::vector<Region> regions_;
  std::uint64_t ran_ = 1;
};

}  // namespace

WorkloadFactory make_gups(Params& p, std::uint64_t seed) {
  const auto log2 =
      static_cast<unsigned>(p.integer("log2_words", 27, "table size: 2^n 8-byte words", 10, 34));
  return [=] { return std::unique_ptr<Workload>(std::make_unique<Gups>(log2, seed)); };
}

}  // namespace memvirt::translation
