// The pool passes need Tmem (host/tmem.cpp), which is not in this branch yet.
#include <stdexcept>

#include "bench_tmem/tmem_bench.hpp"

namespace memvirt {

PoolPass run_pool_pass(Compressor, bool, const PageSet&, TmemBenchProgress&) {
  throw std::runtime_error("bench tmem: the pools (host/tmem.cpp) are not built in yet");
}

}  // namespace memvirt
