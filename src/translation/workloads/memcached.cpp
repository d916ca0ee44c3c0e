// A memcached-like key-value cache: items in slab memory in insertion order, a chained hash
// table of 8-byte bucket heads with memcached's load factor (buckets = items / 1.5 rounded up
// to a power of two), and GETs whose keys follow YCSB's scrambled Zipfian distribution (Gray
// et al.'s generator, theta 0.99, ranks hashed with FNV so popular keys are spread). Emitted:
// the bucket head, each chained item's header and key, and the value lines of the hit.
#include <fmt/format.h>

#include <bit>
#include <cmath>

#include "core/rng.hpp"
#include "translation/workloads/workload.hpp"

namespace memvirt::translation {
namespace {

class Zipfian {
 public:
  Zipfian(std::uint64_t n, double theta) : n_(n), theta_(theta) {
    for (std::uint64_t i = 1; i <= n; ++i) zetan_ += 1.0 / std::pow(static_cast<double>(i), theta);
    const double zeta2 = 1.0 + 1.0 / std::pow(2.0, theta);
    alpha_ = 1.0 / (1.0 - theta);
    eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n), 1.0 - theta)) / (1.0 - zeta2 / zetan_);
  }
  std::uint64_t next(Rng& rng) const {
    const double u = rng.uniform();
    const double uz = u * zetan_;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + std::pow(0.5, theta_)) return 1;
    const auto r = static_cast<std::uint64_t>(static_cast<double>(n_) *
                                              std::pow(eta_ * u - eta_ + 1.0, alpha_));
    return std::min(r, n_ - 1);
  }

 private:
  std::uint64_t n_;
  double theta_;
  double zetan_ = 0, alpha_ = 0, eta_ = 0;
};

std::uint64_t fnv64(std::uint64_t x) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (int i = 0; i < 8; ++i, x >>= 8) {
    h ^= x & 0xFF;
    h *= 0x100000001B3ULL;
  }
  return h;
}

class Memcached final : public Workload {
 public:
  static constexpr std::uint64_t kHeader = 48;  // memcached's item header with CAS

  Memcached(std::uint64_t items, std::uint64_t item_bytes, std::uint64_t value_bytes, double theta,
            std::uint64_t seed)
      : items_(items),
        item_bytes_(item_bytes),
        value_bytes_(value_bytes),
        zipf_(items, theta),
        rng_(seed, "translation.memcached.requests") {
    buckets_.assign(std::bit_ceil(std::max<std::uint64_t>(items * 2 / 3, 1)), 0);
    next_.assign(items, 0);
    keys_.resize(items);
    for (std::uint64_t i = 0; i < items; ++i) {
      keys_[i] = fnv64(i) | 1;  // the key of rank i; never 0
      const std::uint64_t b = keys_[i] & (buckets_.size() - 1);
      next_[i] = buckets_[b];  // new items go to the head of the chain
      buckets_[b] = i + 1;
    }
    buckets_va_ = heap_.place(buckets_.size() * 8);
    slabs_va_ = heap_.place(items * item_bytes);
    regions_ = {heap_.region()};
  }
  [[nodiscard]] const std::vector<Region>& regions() const override { return regions_; }
  [[nodiscard]] std::string describe() const override {
    return fmt::format("memcached-like GETs, {} items of {} B, Zipf keys ({} MiB)", items_,
                       item_bytes_, regions_[0].bytes >> 20);
  }
  void run(RefSink& sink) override {
    while (!sink.full()) {
      const std::uint64_t rank = zipf_.next(rng_);
      const std::uint64_t key = fnv64(fnv64(rank) % items_) | 1;  // YCSB scrambling
      const std::uint64_t b = key & (buckets_.size() - 1);
      sink.emit(buckets_va_ + b * 8);
      for (std::uint64_t it = buckets_[b]; it != 0; it = next_[it - 1]) {
        const std::uint64_t item_va = slabs_va_ + (it - 1) * item_bytes_;
        sink.emit(item_va);            // header: h_next, flags
        sink.emit(item_va + kHeader);  // key
        if (keys_[it - 1] == key) {
          for (std::uint64_t off = 0; off < value_bytes_; off += 64) {
            sink.emit(item_va + kHeader + 16 + off);  // value, a line at a time
          }
          break;
        }
      }
    }
  }

 private:
  std::uint64_t items_, item_bytes_, value_bytes_;
  Zipfian zipf_;
  Rng rng_;
  std::vector<std::uint64_t> buckets_;  // item index + 1 at the chain head, 0 = empty
  std::vector<std::uint64_t> next_;     // the h_next pointer of each item
  std::vector<std::uint64_t> keys_;
  HeapLayout heap_;
  std::uint64_t buckets_va_ = 0, slabs_va_ = 0;
  std::vector<Region> regions_;
};

}  // namespace

WorkloadFactory make_memcached(Params& p, std::uint64_t seed) {
  const auto items =
      static_cast<std::uint64_t>(p.integer("items", 4'000'000, "items stored", 16, 1LL << 32));
  const auto item_bytes = static_cast<std::uint64_t>(
      p.integer("item_bytes", 152, "slab chunk size of one item", 80, 1 << 20));
  const auto value_bytes =
      static_cast<std::uint64_t>(p.integer("value_bytes", 64, "value size", 1, 1 << 20));
  if (value_bytes + Memcached::kHeader + 16 > item_bytes) {
    p.fail("value_bytes", "header, key and value do not fit in item_bytes");
  }
  const double theta = p.real("zipf_theta", 0.99, "Zipf skew of the keys requested", 0.0, 0.999);
  return [=] {
    return std::unique_ptr<Workload>(
        std::make_unique<Memcached>(items, item_bytes, value_bytes, theta, seed));
  };
}

}  // namespace memvirt::translation
