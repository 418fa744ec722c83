// Counters kept by the global operator new/delete that counting_new.cc installs in the test
// binary. Kept in their own translation unit so the compiler cannot see through them.
#pragma once

#include <atomic>

namespace netprof::testing {
extern std::atomic<long> g_allocations;  // operator new calls so far
extern std::atomic<long> g_live_bytes;   // usable bytes currently allocated through new
}  // namespace netprof::testing
