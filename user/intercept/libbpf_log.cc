#include "intercept/libbpf_log.h"

#include <bpf/libbpf.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace netprof {
namespace {

std::atomic<bool> g_verbose{false};

int print_libbpf(enum libbpf_print_level level, const char* format, va_list args) {
  if (!g_verbose.load(std::memory_order_relaxed)) return 0;
  (void)level;
  std::fputs("libbpf: ", stderr);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  return std::vfprintf(stderr, format, args);
#pragma GCC diagnostic pop
}

}  // namespace

void set_libbpf_verbose(bool verbose) {
  g_verbose.store(verbose, std::memory_order_relaxed);
  libbpf_set_print(print_libbpf);
}

bool libbpf_verbose() { return g_verbose.load(std::memory_order_relaxed); }

}  // namespace netprof
