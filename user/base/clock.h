// The clocks netprof reads, in one place. Monotonic nanoseconds time exchanges (they never go
// back); wall-clock (Unix epoch) time stamps reports, pushes and snapshots.
#pragma once

#include <time.h>

#include <cstdint>

namespace netprof {

inline int64_t clock_nanos(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
inline int64_t mono_nanos() { return clock_nanos(CLOCK_MONOTONIC); }
inline int64_t mono_ms() { return mono_nanos() / 1'000'000; }
inline int64_t unix_nanos() { return clock_nanos(CLOCK_REALTIME); }
inline int64_t unix_ms() { return unix_nanos() / 1'000'000; }

}  // namespace netprof
