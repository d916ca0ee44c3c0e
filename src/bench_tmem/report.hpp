// `memvirt bench tmem`'s table (stdout) and results.json (OutputDir).
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "bench_tmem/tmem_bench.hpp"

namespace memvirt {

void print_tmem_report(std::ostream& out, const TmemBenchResult& r);
nlohmann::json tmem_bench_json(const TmemBenchResult& r);
// results.json in `dir`, written whole or not at all.
void write_tmem_outputs(const std::string& dir, const TmemBenchResult& r);

}  // namespace memvirt
