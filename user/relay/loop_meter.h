// What one relay worker measures about its own loop, for netprof_relay_loop_lag_seconds,
// netprof_relay_added_seconds and the overload guard (relay/overload_guard.h). It costs the
// loop one clock read per turn (when epoll_wait returns; the turn's end was already read for
// the timers) and nothing per event:
//  - lag: each loop turn's length, from epoll_wait returning to its events handled (the
//    connect timers and the stats hand-over after them are short by design and not in it). An
//    event that became ready during a turn waited up to that long before the loop could see it.
//  - added time per exchange: for each read of the exchange's connection, the time from the
//    loop waking with it ready to the read done (the recv itself, and queueing behind the other
//    events of that turn), summed over the reads since the connection's previous exchange.
//    Time the bytes waited before the loop woke is not in it (that is the previous turn's
//    lag); the forwarding send after the read is not either.
//  - busy time per scope: the length of every turn longer than kChargeAbove, shared among the
//    scopes by how many of that turn's events were theirs. Short turns are not attributed
//    (they are not what makes a loop lag, and attributing costs a pass over the events).
// Written by the worker's thread; it publishes its window at most every kPublishEvery (one
// short lock); readers take windows under the same lock and read the histograms (relaxed
// atomics, single writer) at any time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "http/exchange.h"

namespace netprof {

class LoopMeter {
 public:
  // Upper bounds in seconds of both histograms (the last bucket is +Inf).
  static constexpr std::array<double, 16> kBuckets = {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
                                                      1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2,
                                                      0.1,  0.25,   0.5,  1.0};
  static constexpr MonoNanos kPublishEvery = 50'000'000;
  static constexpr MonoNanos kChargeAbove = 1'000'000;  // 1 ms

  struct Window {
    MonoNanos lag_max_ns = 0;                         // longest turn that ended in the window
    std::unordered_map<uint32_t, MonoNanos> busy_ns;  // long turns' time, by scope
  };
  struct Histogram {
    std::array<uint64_t, kBuckets.size() + 1> counts{};  // not cumulative
    uint64_t count = 0;
    double sum_s = 0;
    void merge(const Histogram& other);
    // The upper bound of the bucket that holds quantile q (0 < q <= 1); 0 when empty, the
    // last finite bound when it is in +Inf.
    double quantile_bound(double q) const;
  };

  // ---- the worker's thread ----
  // Once per turn: when epoll_wait returned (the loop also keeps it for added times).
  void turn_started(MonoNanos woke) { turn_started_ns_.store(woke, std::memory_order_relaxed); }
  // Once per turn, at its end: records its length; publishes the window when it is due.
  void turn_ended(MonoNanos woke, MonoNanos now);
  void charge(uint32_t scope, MonoNanos ns) { local_.busy_ns[scope] += ns; }
  void record_added(MonoNanos ns) { bump(added_, ns); }

  // ---- any thread ----
  // Everything published since the previous take_window(), and the turn running now: a loop
  // stuck in one turn shows as lag before the turn ends.
  Window take_window(MonoNanos now);
  Histogram lag() const { return read(lag_); }
  Histogram added() const { return read(added_); }
  uint64_t turns() const { return lag_.count.load(std::memory_order_relaxed); }

 private:
  struct AtomicHistogram {
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> counts{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
  };
  static void bump(AtomicHistogram& h, MonoNanos ns);
  static Histogram read(const AtomicHistogram& h);
  void publish();

  AtomicHistogram lag_, added_;
  std::atomic<MonoNanos> turn_started_ns_{0};  // 0 while the loop waits in epoll_wait
  Window local_;                               // worker only
  MonoNanos last_publish_ = 0;                 // worker only
  mutable std::mutex mu_;
  Window shared_;  // guarded by mu_
};

}  // namespace netprof
