#include "counting_new.h"

#include <malloc.h>

#include <cstdlib>
#include <new>

namespace netprof::testing {
std::atomic<long> g_allocations{0};
std::atomic<long> g_live_bytes{0};
}  // namespace netprof::testing

using netprof::testing::g_allocations;
using netprof::testing::g_live_bytes;

void* operator new(size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_live_bytes.fetch_add(static_cast<long>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}

void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  g_live_bytes.fetch_sub(static_cast<long>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}

void operator delete(void* p, size_t) noexcept { operator delete(p); }
