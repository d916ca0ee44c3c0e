// NPB CG: conjugate-gradient iterations (the benchmark's conj_grad: q = A p, two dot products
// and three vector updates per step) on a sparse symmetric matrix built the way NPB's makea
// builds it: the sum over rows of outer products of random sparse vectors with `nonzer`
// nonzeros (plus the row's own index), with a diagonal shift. The random vectors come from
// memvirt's generator, not NPB's randlc, so the pattern has NPB's density but not its exact
// positions. CSR arrays as in cg.f: a (8-byte values), colidx and rowstr (4-byte).
#include <fmt/format.h>

#include <algorithm>

#include "core/rng.hpp"
#include "translation/workloads/workload.hpp"

namespace memvirt::translation {
namespace {

class NpbCg final : public Workload {
 public:
  NpbCg(std::uint32_t na, std::uint32_t nonzer, double shift, std::uint64_t seed) : na_(na) {
    Rng rng(seed, "translation.npb_cg.makea");
    std::vector<std::pair<std::uint64_t, double>> triplets;  // (row << 32 | col, value)
    triplets.reserve(std::size_t{na} * (nonzer + 1) * (nonzer + 1) + na);
    std::vector<std::uint32_t> cols;
    for (std::uint32_t i = 0; i < na; ++i) {
      cols.assign(1, i);
      while (cols.size() < nonzer + 1) {
        const auto c = static_cast<std::uint32_t>(rng.below(na));
        if (std::find(cols.begin(), cols.end(), c) == cols.end()) cols.push_back(c);
      }
      const double scale = rng.uniform();
      for (auto r : cols) {
        for (auto c : cols) {
          triplets.emplace_back((std::uint64_t{r} << 32) | c, scale * 0.5);
        }
      }
      triplets.emplace_back((std::uint64_t{i} << 32) | i, shift);
    }
    std::sort(triplets.begin(), triplets.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    rowstr_.assign(na + 1, 0);
    for (std::size_t k = 0; k < triplets.size(); ++k) {
      if (k > 0 && triplets[k].first == triplets[k - 1].first) {
        a_.back() += triplets[k].second;
        continue;
      }
      a_.push_back(triplets[k].second);
      colidx_.push_back(static_cast<std::uint32_t>(triplets[k].first & 0xFFFFFFFF));
      ++rowstr_[(triplets[k].first >> 32) + 1];
    }
    for (std::uint32_t i = 0; i < na; ++i) rowstr_[i + 1] += rowstr_[i];
    for (auto* v : {&x_, &z_, &p_, &q_, &r_}) v->assign(na, 1.0);
    colidx_va_ = heap_.place(colidx_.size() * 4);
    a_va_ = heap_.place(a_.size() * 8);
    rowstr_va_ = heap_.place(rowstr_.size() * 4);
    x_va_ = heap_.place(std::size_t{na} * 8);
    z_va_ = heap_.place(std::size_t{na} * 8);
    p_va_ = heap_.place(std::size_t{na} * 8);
    q_va_ = heap_.place(std::size_t{na} * 8);
    r_va_ = heap_.place(std::size_t{na} * 8);
    regions_ = {heap_.region()};
  }
  [[nodiscard]] const std::vector<Region>& regions() const override { return regions_; }
  [[nodiscard]] std::string describe() const override {
    return fmt::format("NPB CG, na {} with {} nonzeros ({} MiB)", na_, a_.size(),
                       regions_[0].bytes >> 20);
  }
  void run(RefSink& sink) override {
    double rho = 0;
    for (std::uint32_t j = 0; j < na_; ++j) rho += r_[j] * r_[j];
    while (!sink.full()) {
      // q = A p
      for (std::uint32_t j = 0; j < na_ && !sink.full(); ++j) {
        sink.emit(rowstr_va_ + j * 4ULL);
        sink.emit(rowstr_va_ + (j + 1) * 4ULL);
        double sum = 0;
        for (auto k = rowstr_[j]; k < rowstr_[j + 1]; ++k) {
          sink.emit(a_va_ + k * 8ULL);
          sink.emit(colidx_va_ + k * 4ULL);
          const std::uint32_t c = colidx_[k];
          sink.emit(p_va_ + c * 8ULL);
          sum += a_[k] * p_[c];
        }
        q_[j] = sum;
        sink.emit(q_va_ + j * 8ULL);
      }
      double d = 0;
      for (std::uint32_t j = 0; j < na_; ++j) {
        sink.emit(p_va_ + j * 8ULL);
        sink.emit(q_va_ + j * 8ULL);
        d += p_[j] * q_[j];
      }
      const double alpha = d != 0 ? rho / d : 0;
      const double rho0 = rho;
      rho = 0;
      for (std::uint32_t j = 0; j < na_; ++j) {
        z_[j] += alpha * p_[j];
        r_[j] -= alpha * q_[j];
        rho += r_[j] * r_[j];
        for (std::uint64_t va : {z_va_, p_va_, z_va_, r_va_, q_va_, r_va_})
          sink.emit(va + j * 8ULL);
      }
      const double beta = rho0 != 0 ? rho / rho0 : 0;
      for (std::uint32_t j = 0; j < na_; ++j) {
        p_[j] = r_[j] + beta * p_[j];
        for (std::uint64_t va : {r_va_, p_va_, p_va_}) sink.emit(va + j * 8ULL);
      }
    }
  }

 private:
  std::uint32_t na_;
  std::vector<double> a_;
  std::vector<std::uint32_t> colidx_;
  std::vector<std::uint32_t> rowstr_;
  std::vector<double> x_, z_, p_, q_, r_;
  HeapLayout heap_;
  std::uint64_t colidx_va_ = 0, a_va_ = 0, rowstr_va_ = 0, x_va_ = 0, z_va_ = 0, p_va_ = 0,
                q_va_ = 0, r_va_ = 0;
  std::vector<Region> regions_;
};

}  // namespace

WorkloadFactory make_npb_cg(Params& p, std::uint64_t seed) {
  // Defaults: NPB class B (na 75000, nonzer 13, shift 60).
  const auto na = static_cast<std::uint32_t>(p.integer("na", 75000, "matrix order", 16, 1 << 24));
  const auto nonzer =
      static_cast<std::uint32_t>(p.integer("nonzer", 13, "nonzeros per random vector", 1, 64));
  if (nonzer + 1 > na) p.fail("nonzer", "must be below na");
  const double shift = p.real("shift", 60.0, "diagonal shift", 0.0, 1e9);
  return
      [=] { return std::unique_ptr<Workload>(std::make_unique<NpbCg>(na, nonzer, shift, seed)); };
}

}  // namespace memvirt::translation
