// The session's side of the overload fail-open: every supervisor tick (~100 ms) it takes what
// each relay worker's loop meter saw (relay/loop_meter.h), lets the OverloadGuard decide
// (relay/overload_guard.h) and applies its decisions through the mode's InterceptionSwitch:
// the busiest pod of a worker that keeps lagging is detached (its new connections go straight
// to the app; relayed ones carry on) and re-attached after the cool-down. Each change is
// logged with its reason and shown in /stats ("relay") and /metrics
// (netprof_interception_active{pod}, netprof_overload_detaches_total), next to the loop lag
// and added-time histograms. Proxy mode has nothing to detach: there it only measures.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "admin/http_server.h"
#include "relay/overload_guard.h"
#include "relay/relay_group.h"

namespace netprof {

class PrometheusWriter;

// What a mode that intercepts lets the guard switch. Called on the session's supervisor
// thread only. A pod is known by a key the mode chooses (node: its inbound scope).
struct InterceptionSwitch {
  // The pod whose traffic `scope` is; nullopt when no pod's (nothing to detach).
  std::function<std::optional<uint32_t>(uint32_t scope)> pod_of;
  // Suspends (on = false) or resumes the pod's interception; "" when done, else why not.
  std::function<std::string(uint32_t pod, bool on)> set;
  // Every pod intercepted now, with its label (metrics' `pod`, logs).
  std::function<std::vector<std::pair<uint32_t, std::string>>()> pods;
  explicit operator bool() const { return pod_of && set && pods; }
};

class OverloadWatch {
 public:
  OverloadWatch(RelayGroup& relays, OverloadGuardOptions options, std::string mode,
                std::function<void(const std::string&)> log);

  // Supervisor thread only. `intercept` may be empty (proxy mode).
  void tick(MonoNanos now, const InterceptionSwitch& intercept);

  // Any thread: the "relay" object of /stats, the relay's series of /metrics, and the pods'
  // interception state (label, active) for netprof_interception_active.
  nlohmann::json status() const;
  void write_metrics(PrometheusWriter& w) const;
  std::vector<std::pair<std::string, bool>> pod_states() const;
  bool any_active() const;  // false when every intercepted pod is detached
  // Changes whenever what status() and write_metrics() show changes (at most every tick).
  uint64_t version() const;

  // Tests only (NETPROF_TEST_HOOKS=1): POST /debug/stall?ms=N&seconds=S[&worker=W][&scope=X]
  // makes the relay's loop sleep N ms per turn (see Relay::stall_for_tests).
  HttpResponse debug_stall(const HttpRequest& request);

 private:
  RelayGroup& relays_;
  const std::string mode_;
  std::function<void(const std::string&)> log_;
  const int64_t wall_minus_mono_ms_;

  mutable std::mutex mu_;  // guards everything below
  OverloadGuard guard_;
  std::vector<std::deque<std::pair<MonoNanos, MonoNanos>>> recent_lag_;  // per worker: (at, lag)
  std::vector<std::pair<uint32_t, std::string>> pods_;                   // as of the last tick
  std::map<uint32_t, std::string> labels_;  // of every pod the guard acted on
  uint64_t version_ = 0;
};

}  // namespace netprof
