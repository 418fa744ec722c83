// What a profiling session shows to the outside besides the periodic report: the admin API
// (dashboard, /stats, /metrics, /tap), the Prometheus series behind /metrics, and pushes to
// collectors (OTLP/HTTP JSON, the origin's JSON POST). Owns the exchange pipeline the relay
// reports to (route naming -> store, HTTP series, tap) and the StatsHub that turns what the
// relay counted into the snapshots every output reads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cli/session.h"
#include "http/exchange.h"

namespace netprof {

class ExchangeSink;
class RouteNamer;
class AssetClassifier;
class ScopeRegistry;
class StatsHub;
struct ConnectionCounters;

class Outputs {
 public:
  Outputs(const ProfileOptions& options, std::shared_ptr<RouteNamer> namer,
          std::shared_ptr<const AssetClassifier> assets);
  ~Outputs();
  // One pipeline per relay worker (options.workers, resolved): worker i's sink and loop tick
  // (RelayOptions::on_tick), both on worker i's thread only.
  ExchangeSink& sink(size_t worker);
  void on_relay_tick(size_t worker, MonoNanos now);
  ConnectionCounters& connections(size_t worker);  // worker's connection counters
  StatsHub& stats();                   // snapshots of everything counted
  // Once the relay's loop has returned: collects everything it still holds, so that the final
  // report and pushes count every exchange.
  void finish_relay();
  // Node mode, before start(): pod labels on /metrics, the pods grouping on /stats and pushes.
  void set_scopes(const ScopeRegistry* scopes);
  // Before start(): the relay's loop figures and the overload guard on /stats and /metrics;
  // with `test_hooks` (NETPROF_TEST_HOOKS=1) also POST /debug/stall.
  void set_overload_watch(OverloadWatch* watch, bool test_hooks);
  // Drops the metric series of `scope` (a pod gone for longer than its expiry time).
  void erase_scope(uint32_t scope);
  // Starts the admin server and pushers; false (after printing why) if an explicitly
  // requested admin address cannot be bound.
  bool start();
  void stop();  // final pushes, then the admin server

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace netprof
