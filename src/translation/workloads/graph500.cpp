// graph500 BFS: a Kronecker (R-MAT) graph generated as the graph500 reference generator does
// (initiator A = 0.57, B = 0.19, C = 0.19, edge factor 16, vertex labels randomly permuted),
// stored as the reference's sequential CSR (64-bit offsets and neighbours), then breadth-first
// searches from random roots. Emitted: the queue, offset, neighbour and parent-array loads and
// stores of the search.
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "core/rng.hpp"
#include "translation/workloads/workload.hpp"

namespace memvirt::translation {
namespace {

class Graph500 final : public Workload {
 public:
  Graph500(unsigned scale, unsigned edge_factor, std::uint64_t seed)
      : scale_(scale), rng_(seed, "translation.graph500.roots") {
    const std::uint64_t n = 1ULL << scale;
    const std::uint64_t m = n * edge_factor;
    Rng gen(seed, "translation.graph500.kronecker");
    std::vector<std::uint64_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    for (std::uint64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[gen.below(i + 1)]);
    std::vector<std::pair<std::uint32_t, std::uint32_t>> edges;
    edges.reserve(m);
    constexpr double kA = 0.57, kB = 0.19, kC = 0.19;
    for (std::uint64_t e = 0; e < m; ++e) {
      std::uint64_t u = 0, v = 0;
      for (unsigned bit = 0; bit < scale; ++bit) {
        const double r = gen.uniform();
        const bool down = r >= kA + kB;                                    // quadrants C or D
        const bool right = (r >= kA && r < kA + kB) || r >= kA + kB + kC;  // B or D
        u = (u << 1) | (down ? 1 : 0);
        v = (v << 1) | (right ? 1 : 0);
      }
      if (u != v) {
        edges.emplace_back(static_cast<std::uint32_t>(perm[u]),
                           static_cast<std::uint32_t>(perm[v]));
      }
    }
    // Undirected CSR.
    xoff_.assign(n + 1, 0);
    for (auto [u, v] : edges) {
      ++xoff_[u + 1];
      ++xoff_[v + 1];
    }
    std::partial_sum(xoff_.begin(), xoff_.end(), xoff_.begin());
    xadj_.resize(static_cast<std::size_t>(xoff_[n]));
    std::vector<std::int64_t> fill(xoff_.begin(), xoff_.end() - 1);
    for (auto [u, v] : edges) {
      xadj_[static_cast<std::size_t>(fill[u]++)] = v;
      xadj_[static_cast<std::size_t>(fill[v]++)] = u;
    }
    parent_.assign(n, -1);
    queue_.assign(n, 0);
    xoff_va_ = heap_.place(xoff_.size() * 8);
    xadj_va_ = heap_.place(xadj_.size() * 8);
    parent_va_ = heap_.place(parent_.size() * 8);
    queue_va_ = heap_.place(queue_.size() * 8);
    regions_ = {heap_.region()};
  }
  [[nodiscard]] const std::vector<Region>& regions() const override { return regions_; }
  [[nodiscard]] std::string describe() const override {
    return fmt::format("graph500 BFS, scale {} ({} vertices, {} directed edges, {} MiB)", scale_,
                       parent_.size(), xadj_.size(), regions_[0].bytes >> 20);
  }
  void run(RefSink& sink) override {
    const std::uint64_t n = parent_.size();
    while (!sink.full()) {
      std::uint64_t root = rng_.below(n);
      while (xoff_[root + 1] == xoff_[root]) root = rng_.below(n);
      std::fill(parent_.begin(), parent_.end(), -1);
      std::uint64_t head = 0, tail = 0;
      parent_[root] = static_cast<std::int64_t>(root);
      queue_[tail++] = root;
      while (head < tail && !sink.full()) {
        sink.emit(queue_va_ + head * 8);
        const std::uint64_t u = queue_[head++];
        sink.emit(xoff_va_ + u * 8);
        sink.emit(xoff_va_ + (u + 1) * 8);
        for (auto k = xoff_[u]; k < xoff_[u + 1]; ++k) {
          sink.emit(xadj_va_ + static_cast<std::uint64_t>(k) * 8);
          const std::uint64_t w = xadj_[static_cast<std::size_t>(k)];
          sink.emit(parent_va_ + w * 8);
          if (parent_[w] < 0) {
            parent_[w] = static_cast<std::int64_t>(u);
            sink.emit(parent_va_ + w * 8);
            queue_[tail] = w;
            sink.emit(queue_va_ + tail * 8);
            ++tail;
          }
        }
      }
    }
  }

 private:
  unsigned scale_;
  Rng rng_;
  std::vector<std::int64_t> xoff_;
  std::vector<std::uint64_t> xadj_;
  std::vector<std::int64_t> parent_;
  std::vector<std::uint64_t> queue_;
  HeapLayout heap_;
  std::uint64_t xoff_va_ = 0, xadj_va_ = 0, parent_va_ = 0, queue_va_ = 0;
  std::vector<Region> regions_;
};

}  // namespace

WorkloadFactory make_graph500(Params& p, std::uint64_t seed) {
  const auto scale =
      static_cast<unsigned>(p.integer("scale", 20, "log2 of the vertex count", 4, 28));
  const auto ef = static_cast<unsigned>(
      p.integer("edge_factor", 16, "edges per vertex (graph500 specification: 16)", 1, 64));
  return [=] { return std::unique_ptr<Workload>(std::make_unique<Graph500>(scale, ef, seed)); };
}

}  // namespace memvirt::translation
