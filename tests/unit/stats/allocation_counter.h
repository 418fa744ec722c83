// Counts heap allocations (global operator new is replaced in allocation_counter.cc), so a
// test can prove that a hot path allocates nothing.
#pragma once

#include <cstdint>

namespace netprof::testing {
uint64_t allocations();
}
