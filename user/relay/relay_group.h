// N relay workers, each its own Relay (epoll loop) on its own thread. A connection lives on
// the worker whose listener accepted it, so workers share nothing on the data path but the
// connection counters (relaxed atomics). How connections are spread over the workers is up
// to whoever made the listeners: SO_REUSEPORT (proxy mode) or the sk_lookup program
// (interception), each worker owning one listener of the group.
//
// With one worker, run() runs the loop on the calling thread, exactly as a lone Relay.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "relay/relay.h"

namespace netprof {

class RelayGroup {
 public:
  // `sink_of(i)` is worker i's exchange sink and `on_tick(i, now)` its loop tick (both run
  // on worker i's thread only); `counters_of(i)` its connection counters (its own: the byte
  // counters move on every read and must not bounce between cores).
  RelayGroup(size_t workers, const RelayOptions& options,
             const std::function<ExchangeSink&(size_t)>& sink_of,
             std::function<void(size_t, MonoNanos)> on_tick,
             const std::function<ConnectionCounters&(size_t)>& counters_of);
  ~RelayGroup();
  RelayGroup(const RelayGroup&) = delete;
  RelayGroup& operator=(const RelayGroup&) = delete;

  size_t size() const { return workers_.size(); }
  Relay& worker(size_t i) { return *workers_[i]; }
  // Worker i's loop meter (relay/loop_meter.h): every worker is metered.
  LoopMeter& meter(size_t i) { return *meters_[i]; }

  // Before run(): gives the listener to worker spec.worker (taken modulo size()).
  void add_listener(ListenerSpec spec);
  // Any thread, while running: adds each listener on its worker's loop thread.
  void post_listeners(std::vector<ListenerSpec> specs);
  // Any thread, while running: stops accepting on these listeners and closes them; their open
  // connections carry on.
  struct ListenerRef {
    uint32_t worker = 0;
    ListenerId id;
  };
  void post_remove_listeners(std::vector<ListenerRef> listeners);

  // Runs every worker until request_stop() (or until one fails: then all stop). Returns 0, or
  // the first worker's errno.
  int run();
  // Safe from any thread and from signal handlers.
  void request_stop();

  // Tests only: Relay::stall_for_tests on worker `worker`, or on every worker when < 0.
  void stall_for_tests(MonoNanos per_turn, MonoNanos duration, int64_t worker, int64_t scope);

 private:
  std::vector<std::unique_ptr<LoopMeter>> meters_;  // first: the workers point at them
  std::vector<std::unique_ptr<Relay>> workers_;
};

}  // namespace netprof
