// A program that makes random moves on a guest for property tests: it maps and touches
// regions, unmaps them whole or by their tail, and rewrites pages, and remembers what every
// page it still owns should hold.
#pragma once

#include <rapidcheck.h>

#include <vector>

#include "guest/kernel.hpp"

namespace memvirt::testing {

class RandomProgram {
 public:
  // `max_rss` keeps the program clear of the guest's OOM killer.
  RandomProgram(GuestKernel& k, std::uint64_t max_rss)
      : k_(k), pid_(k.spawn("p")), max_rss_(max_rss) {}

  void map_and_touch() {
    const std::uint64_t n = *rc::gen::inRange<std::uint64_t>(1, 1500);
    if (k_.process(pid_)->rss_pages + n > max_rss_) return;
    Region r{k_.mmap(pid_, Bytes{n * kPageSize}), {}};
    k_.touch(pid_, r.id, n, [&](std::uint64_t i) {
      r.data.push_back(content());
      return r.data[i];
    });
    regions_.push_back(std::move(r));
  }
  void unmap() {
    if (regions_.empty()) return;
    const std::size_t i = *rc::gen::inRange<std::size_t>(0, regions_.size());
    k_.munmap(pid_, regions_[i].id);
    regions_.erase(regions_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  void unmap_tail() {
    if (regions_.empty()) return;
    Region& r = regions_[*rc::gen::inRange<std::size_t>(0, regions_.size())];
    const std::uint64_t n = *rc::gen::inRange<std::uint64_t>(1, r.data.size() + 1);
    k_.munmap_tail(pid_, r.id, n);
    r.data.resize(r.data.size() - n);
  }
  void rewrite() {
    if (regions_.empty()) return;
    Region& r = regions_[*rc::gen::inRange<std::size_t>(0, regions_.size())];
    if (r.data.empty()) return;
    const std::uint64_t i = *rc::gen::inRange<std::uint64_t>(0, r.data.size());
    r.data[i] = content();
    k_.write(pid_, r.id, i, r.data[i]);
  }
  [[nodiscard]] bool alive() const { return k_.process(pid_)->alive; }
  // Every page the program owns reads back what it last wrote.
  void check_reads() const {
    for (const Region& r : regions_) {
      for (std::uint64_t i = 0; i < r.data.size(); ++i) {
        RC_ASSERT(k_.read(pid_, r.id, i) == r.data[i]);
      }
    }
  }

 private:
  struct Region {
    std::uint64_t id;
    std::vector<Fingerprint> data;
  };
  // Few distinct contents, so mechanisms that merge find duplicates.
  static Fingerprint content() {
    return make_fingerprint(*rc::gen::inRange<std::uint64_t>(1, 1000));
  }

  GuestKernel& k_;
  std::uint32_t pid_;
  std::uint64_t max_rss_;
  std::vector<Region> regions_;
};

}  // namespace memvirt::testing
