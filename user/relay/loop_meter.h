// What one relay worker measures about its own loop, for netprof_relay_loop_lag_seconds, the
// relay's added time per exchange, and the overload guard (relay/overload_guard.h):
//  - lag: the longest stretch the loop went without looking for new events (from epoll_wait
//    returning to the next call). A connection that became ready meanwhile waited that long.
//  - added time per exchange: for each event of the exchange's connection, the time from the
//    loop waking up with it ready to the event's bytes having been passed on (queueing behind
//    the other events of that batch plus the relay's own work), summed over the events since
//    the connection's previous exchange. An upper bound of what the relay adds to it.
//  - busy time per scope: the loop time each scope's events took, to tell which pod's
//    traffic keeps the loop busy.
// Written by the worker's thread; the worker publishes its window at most every
// kPublishEvery (one short lock); readers take windows under the same lock.
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
  // Upper bounds in seconds of the added-time histogram (the last bucket is +Inf).
  static constexpr std::array<double, 16> kAddedBuckets = {
      1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
      5e-3, 1e-2,   2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0};
  static constexpr MonoNanos kPublishEvery = 50'000'000;

  struct Window {
    MonoNanos lag_max_ns = 0;                         // longest stretch without epoll_wait
    std::unordered_map<uint32_t, MonoNanos> busy_ns;  // loop time by scope
  };
  struct AddedTime {
    std::array<uint64_t, kAddedBuckets.size() + 1> buckets{};  // not cumulative
    uint64_t count = 0;
    double sum_s = 0;
  };

  // ---- the worker's thread ----
  void charge(uint32_t scope, MonoNanos ns) { local_.busy_ns[scope] += ns; }
  void record_added(MonoNanos ns);
  // Once per loop iteration: `woke` when epoll_wait returned, `now` after the batch.
  void on_iteration(MonoNanos woke, MonoNanos now);

  // ---- any thread ----
  // The lag of the last published window, in seconds (the gauge).
  double lag_seconds() const {
    return static_cast<double>(last_lag_ns_.load(std::memory_order_relaxed)) / 1e9;
  }
  // Everything published since the previous take_window() (the overload guard's view).
  Window take_window();
  AddedTime added_time() const;

 private:
  void publish();

  Window local_;  // worker only
  MonoNanos last_publish_ = 0;
  std::array<std::atomic<uint64_t>, kAddedBuckets.size() + 1> added_buckets_{};
  std::atomic<uint64_t> added_count_{0}, added_sum_ns_{0};

  std::atomic<MonoNanos> last_lag_ns_{0};
  mutable std::mutex mu_;
  Window shared_;  // guarded by mu_
};

}  // namespace netprof
