// Entry point of `memvirt run` for translation scenarios (seed 004): those whose top level
// says `kind: translation`.
#pragma once

#include <string>
#include <vector>

#include "translation/experiment.hpp"

namespace memvirt {

// True when `file` is a YAML map with `kind: translation`. Unreadable files give false, so the
// general loader reports them.
bool is_translation_scenario(const std::string& file);

// Runs it, writes config.yaml, results.json and results.csv into out_dir (default
// out/<scenario name>), prints a summary. Returns the exit status; throws InputError on bad
// input.
// Writes config.yaml, results.json and results.csv of a run of `s` into `out_dir` (created if
// missing), each file whole or not at all (OutputDir).
void write_translation_outputs(const std::string& out_dir,
                               const translation::TranslationScenario& s,
                               const std::vector<translation::WorkloadResult>& results);

int run_translation_scenario(const std::string& file, const std::vector<std::string>& overrides,
                             std::string out_dir, bool quiet);

}  // namespace memvirt
