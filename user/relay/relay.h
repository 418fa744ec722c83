// The man in the middle: one epoll loop that accepts client connections, opens one upstream
// connection for each, and copies bytes both ways unchanged while feeding them to an
// HttpTracker. Back-pressure per direction; half-close and resets propagate.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "http/exchange.h"
#include "http/tracker.h"
#include "relay/loop_meter.h"
#include "relay/upstream_dialer.h"
#include "stats/connection_counters.h"

namespace netprof {

struct RelayOptions {
  size_t buffer_bytes = 64 * 1024;    // max bytes held per direction before the reader pauses
  size_t max_connections = 100000;    // relayed connections at once; more are refused at accept
  int drain_timeout_ms = 5000;        // on stop: how long open exchanges may finish
  int connect_timeout_ms = 10000;     // upstream connect timeout
  TrackerLimits tracker;
  // Connection ids: this relay numbers its connections first, first + step, ... (RelayGroup
  // gives worker i of N first = i + 1, step = N, so ids are unique across workers).
  uint64_t first_connection_id = 1;
  uint64_t connection_id_step = 1;
  // Called on the loop thread once per loop iteration (at least every ~100 ms): where the
  // stats pipeline hands its counts over. Must be short and must not block.
  std::function<void(MonoNanos now)> on_tick;
  // Where the loop records its lag, the added time per exchange and its busy time per scope
  // (relay/loop_meter.h); null = not measured. Must outlive the relay.
  LoopMeter* meter = nullptr;
};

// Names a listener once its fd belongs to the relay. Never the fd number: the relay closes the
// fd (on remove, at stop), and the number may then be another socket's.
struct ListenerId {
  uint64_t value = 0;
  bool operator==(const ListenerId&) const = default;
};
ListenerId next_listener_id();  // unique in the process; any thread

struct ListenerSpec {
  UniqueFd fd;                          // a listening TCP socket, owned: closed with the spec
  uint32_t scope = 0;                   // stamped on every Exchange from this listener
  std::shared_ptr<UpstreamDialer> dialer;
  uint32_t worker = 0;                  // the RelayGroup worker that serves it
  ListenerId id = next_listener_id();   // what remove_listener() takes
};

class Relay {
 public:
  Relay(RelayOptions options, ExchangeSink& sink, ConnectionCounters& counters);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Call before run() or from the loop thread (see post()).
  void add_listener(ListenerSpec spec);
  // Stops accepting on the listener `id` and closes it; its open connections carry on.
  // Loop thread only. Returns false if no such listener.
  bool remove_listener(ListenerId id);
  // Runs `task` on the loop thread soon. Safe from any thread (not from signal handlers).
  // This is how node mode adds and removes pods while the relay runs.
  void post(std::function<void()> task);
  // Runs the loop until request_stop(); then stops accepting, drains for up to
  // drain_timeout_ms and closes what is left. Returns 0, or an errno on a fatal loop error.
  int run();
  // Safe from any thread and from signal handlers.
  void request_stop();

  // Tests only (the admin API's POST /debug/stall, served when NETPROF_TEST_HOOKS=1): for
  // `duration` from now (0 ends a stall), every loop turn that handled an event of `scope`
  // (every turn, idle ones too, when scope < 0) sleeps `per_turn` before it ends, as if that
  // traffic were expensive. Any thread. Costs the loop one branch per turn while off.
  void stall_for_tests(MonoNanos per_turn, MonoNanos duration, int64_t scope);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A non-blocking listening socket on `address` (SO_REUSEADDR); invalid with errno set on failure.
// With `reuse_port`, SO_REUSEPORT too: several listeners on one address, one per worker, over
// which the kernel spreads new connections by their 4-tuple hash.
UniqueFd listen_tcp(const SocketAddress& address, int backlog = 4096, bool reuse_port = false);

}  // namespace netprof
