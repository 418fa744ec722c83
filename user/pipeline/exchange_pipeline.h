// The exchange pipeline of one relay worker: tracker -> route naming (once) -> the worker's
// own route store and HTTP series -> the tap. It is the ExchangeSink the worker's trackers
// report to, and it runs on the worker's thread only.
//
// The store and series are double-buffered (pipeline/handoff.h): on_tick() hands the filled
// buffer to the StatsHub when the hub asked for it (or at the latest every max_hold), and goes
// on in the other one. The relay never takes a lock a reader holds and never waits for the
// hub; a known key costs no allocation in either buffer.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "export/http_metrics.h"
#include "export/routed_tee.h"
#include "http/exchange.h"
#include "pipeline/handoff.h"
#include "routes/route_namer.h"
#include "stats/connection_counters.h"
#include "stats/route_store.h"
#include "stats/tls_store.h"

namespace netprof {

class AssetClassifier;

struct PipelineOptions {
  StoreLimits limits;
  HttpMetricsOptions metrics;
  bool record_metrics = true;  // off when nobody reads the HTTP series (no admin API, no OTLP)
  // Hand counts over at least this often even if the hub did not ask (it normally asks).
  std::chrono::milliseconds max_hold{1000};
};

// What a worker hands over: its counts since the previous hand-over.
struct WorkerDelta {
  WorkerDelta(const StoreLimits& limits, const std::shared_ptr<RouteNamer>& namer,
              const std::shared_ptr<const AssetClassifier>& assets,
              const HttpMetricsOptions& metrics_options)
      : store(limits, namer, assets), metrics(metrics_options) {}
  RouteStore store;
  HttpMetrics metrics;
  TlsStore tls;
};

class ExchangePipeline final : public ExchangeSink {
 public:
  // `tap` may be null. `connections` is shared by all workers (relaxed atomics).
  ExchangePipeline(const PipelineOptions& options, std::shared_ptr<RouteNamer> namer,
                   std::shared_ptr<const AssetClassifier> assets, RoutedSink* tap,
                   ConnectionCounters& connections);
  ~ExchangePipeline() override;

  // Worker thread.
  void on_exchange(const Exchange& exchange) override;
  void on_unparsed_connection(uint32_t scope) override;
  void on_untracked_stream(uint32_t scope) override;
  void on_tls_connection(const TlsConnection& connection) override;
  // Worker thread, once per loop iteration: hands the filled buffer over when asked, and
  // applies scope erasures. Cheap when there is nothing to do (two atomic loads).
  void on_tick(MonoNanos now);

  // Any thread: ask the worker to hand its counts over at its next tick.
  void request_handoff() { handoff_wanted_.store(true, std::memory_order_release); }
  // Any thread: drop every count of `scope` in the worker's buffers (applied at its ticks).
  void erase_scope(uint32_t scope);

  Handoff<WorkerDelta>& handoff() { return handoff_; }

 private:
  void apply_erasures();

  const PipelineOptions options_;
  std::shared_ptr<RouteNamer> namer_;
  const bool concurrent_naming_;
  RoutedSink* tap_;
  ConnectionCounters& connections_;
  Handoff<WorkerDelta> handoff_;
  std::string route_scratch_;
  RouteNamer::Scratch naming_scratch_;  // this worker's: the namer may be shared by workers
  MonoNanos next_handoff_ = 0;
  std::atomic<bool> handoff_wanted_{false};

  std::atomic<bool> erase_pending_{false};
  std::mutex erase_mu_;  // guards erase_queue_; taken by the worker only when erase_pending_
  std::vector<uint32_t> erase_queue_;
  std::vector<uint32_t> erase_spare_;  // worker only: scopes still to erase in the spare buffer
};

}  // namespace netprof
