// Replicated experiments: experiment.replicates runs of one experiment, each an independent
// Simulation with a seed of its own, and how their numbers combine (experiment.aggregate).
//
// Replicates share nothing mutable: each has its own copy of the scenario (which differs only
// in its seed) and builds its own Simulation, whose objects all come from the scenario's
// immutable specs. So they run on threads of their own, and what they return does not depend
// on how many run at a time.
#pragma once

#include <cstdint>
#include <span>

#include "scenario/experiment.hpp"

namespace memvirt {

// The seed of replicate `index`: the scenario's own for replicate 0, then seeds derived from
// it, below 2^63, so that `-p seed=<that seed>` runs one replicate alone.
std::uint64_t replicate_seed(std::uint64_t scenario_seed, unsigned index);

// One number's aggregate over the replicates' values: their mean, or (trimmed_mean) the mean of
// what is left once the highest and the lowest value are dropped. When the values averaged are
// all equal, that value exactly. Throws std::invalid_argument for no values, or for fewer than
// three with trimmed_mean.
double aggregate(std::span<const double> values, Aggregate how);

// Runs each of s.experiment.replicates replicates of the scenario's experiment (a fixed one),
// up to `jobs` at a time (0 counts as 1; 1: one after another on this thread), and returns
// replicate 0's result with every replicate in `replicates`. The progress sink, when given,
// gets replicates() and replicate_done(), one call at a time. When replicates fail, the
// exception of the lowest-numbered one is rethrown once the running ones have finished.
ExperimentResult run_replicates(const Scenario& s, ExperimentProgress* progress, unsigned jobs);

}  // namespace memvirt
