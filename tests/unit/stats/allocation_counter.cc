// In its own translation unit: GCC would otherwise see the malloc/free pairing through
// inlining and warn (-Wmismatched-new-delete) about a perfectly valid replacement.
#include "allocation_counter.h"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<uint64_t> g_allocations{0};
std::atomic<int64_t> g_in_use{0};
std::atomic<int64_t> g_peak{0};

void grew(void* p) {
  const int64_t now = g_in_use.fetch_add(static_cast<int64_t>(malloc_usable_size(p)),
                                         std::memory_order_relaxed) +
                      static_cast<int64_t>(malloc_usable_size(p));
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}
void release(void* p) noexcept {
  if (p == nullptr) return;
  g_in_use.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

namespace netprof::testing {
uint64_t allocations() { return g_allocations.load(std::memory_order_relaxed); }
int64_t heap_in_use() { return g_in_use.load(std::memory_order_relaxed); }
int64_t heap_peak() { return g_peak.load(std::memory_order_relaxed); }
void reset_heap_peak() { g_peak.store(heap_in_use(), std::memory_order_relaxed); }
}  // namespace netprof::testing

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) {
    grew(p);
    return p;
  }
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
