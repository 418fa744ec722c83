// Counts heap allocations (global operator new is replaced in allocation_counter.cc), so a
// test can prove that a hot path allocates nothing, and follows the bytes in use, so a test can
// bound what a piece of work needs at its peak.
#pragma once

#include <cstdint>

namespace netprof::testing {
uint64_t allocations();
// Bytes allocated through operator new and not yet freed, as malloc counts them.
int64_t heap_in_use();
// The most heap_in_use() has been since the last reset_heap_peak().
int64_t heap_peak();
void reset_heap_peak();
}
