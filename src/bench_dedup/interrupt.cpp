#include "bench_dedup/interrupt.hpp"

#include <csignal>

namespace memvirt {
namespace {

// A signal handler can only reach static storage: this flag is the one process-wide state.
volatile std::sig_atomic_t g_interrupted = 0;

void on_signal(int /*sig*/) {
  g_interrupted = 1;
}

}  // namespace

InterruptGuard::InterruptGuard() {
  g_interrupted = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

bool InterruptGuard::requested() {
  return g_interrupted != 0;
}

}  // namespace memvirt
