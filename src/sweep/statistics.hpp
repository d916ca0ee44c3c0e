// What summary.csv says of one result over a point's seeds: the mean, the standard deviation,
// a 95 % confidence interval of the mean, and, when asked (seed 003's convention), the mean
// with the highest and the lowest run dropped.
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include "scenario/scenario.hpp"

namespace memvirt::sweep {

struct Summary {
  std::size_t n = 0;
  double mean = 0;
  std::optional<double> sd;    // the sample standard deviation (n - 1): two values or more
  std::optional<double> ci95;  // half-width of the 95 % interval of the mean, Student's t with
                               // n - 1 degrees of freedom: two values or more
  std::optional<double> trimmed_mean;  // aggregate: trimmed_mean, three values or more
  // The value a table shows: trimmed_mean when asked for and there, else mean.
  [[nodiscard]] double value() const { return trimmed_mean.value_or(mean); }
};

// Summarises `values` (at least one). The sums run over the values sorted, so the result does
// not depend on their order. Means as scenario/replicates.hpp's aggregate() computes them.
Summary summarize(std::span<const double> values, Aggregate how);

}  // namespace memvirt::sweep
