// The aggregator between the relay workers and everything that reads statistics. Every
// interval its thread asks each worker's pipeline for its counts, merges them into its own
// cumulative store and HTTP series (exactly: counts add, histograms merge) and publishes an
// immutable StatsSnapshot. /stats, /metrics, reports and pushes read snapshots; nothing they
// do reaches a worker.
//
// Rendered outputs are cached here too (rendered()): each output is rendered at most once per
// interval, from the latest snapshot, and the same bytes are handed to every reader, so
// memory does not grow with the number of readers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "export/http_metrics.h"
#include "pipeline/exchange_pipeline.h"
#include "routes/route_namer.h"
#include "stats/connection_counters.h"
#include "stats/route_store.h"

namespace netprof {

struct StatsSnapshot {
  uint64_t generation = 0;      // increases with every published snapshot
  int64_t taken_at_ms = 0;      // wall clock
  RouteTableSnapshot routes;    // the per-route table (the JSON report)
  HttpMetricsSnapshot metrics;  // the HTTP series (/metrics, OTLP), sorted
  RouteNamerCounters namer;
};

struct StatsHubOptions {
  std::chrono::milliseconds interval{1000};  // collect + publish; also the render interval
  // How long a collection waits for workers to hand over (they do at their next loop tick,
  // at most ~100 ms away when idle). A worker that misses it is collected next time.
  std::chrono::milliseconds handoff_wait{250};
  // The flight recorder's window (the report interval): the slowest exchanges are kept for the
  // current and the previous one (stats/flight_recorder.h).
  std::chrono::milliseconds flight_window{5000};
};

class StatsHub {
 public:
  StatsHub(StatsHubOptions options, const StoreLimits& limits,
           const HttpMetricsOptions& metrics_options, std::shared_ptr<RouteNamer> namer,
           std::shared_ptr<const AssetClassifier> assets);
  ~StatsHub();  // stop()
  StatsHub(const StatsHub&) = delete;
  StatsHub& operator=(const StatsHub&) = delete;

  // Before start(). The pipeline must outlive the hub's use of it (until stop()).
  void add_worker(ExchangePipeline* pipeline);
  // Worker `worker`'s connection counters (the relay's and its pipeline's); created on first
  // use, before the workers start. Snapshots carry their sum.
  ConnectionCounters& connections(size_t worker = 0);
  const HttpMetricsOptions& metrics_options() const { return metrics_options_; }
  const StatsHubOptions& options() const { return options_; }

  void start();
  void stop();  // joins the thread; snapshots stay readable

  // Collects what every worker handed over and publishes a snapshot if anything changed.
  // With `workers_stopped` (their loops have returned, so this thread may act as their
  // owner), first makes each worker hand over everything it still holds: the final report
  // then counts every exchange. From then on every call acts so (no waiting for ticks).
  void collect_now(bool workers_stopped = false);

  // The latest snapshot (never null). Any thread; a reference count, no copy.
  std::shared_ptr<const StatsSnapshot> snapshot() const;

  // Node mode: drops every count of `scope` (in the workers, the cumulative tables and, from
  // the next snapshot, the outputs).
  void erase_scope(uint32_t scope);

  // The rendered output `name` (e.g. "stats", "stats_pretty", "metrics"): rendered by
  // `render` from the latest snapshot when the cached one is older than the interval, else
  // the cached bytes. Concurrent callers of the same output share one render: the others
  // wait for it instead of rendering again. `inputs_version` names what else the renderer
  // reads besides the snapshot (e.g. ScopeRegistry::version()): once the interval has passed,
  // a change of it renders again even when no new snapshot was published.
  // `etag` names these exact bytes (unique in this process and across restarts), so a
  // reader that already has them is answered 304 without a body.
  using Renderer = std::function<std::string(const StatsSnapshot&)>;
  struct Rendered {
    std::shared_ptr<const std::string> bytes;
    std::string etag;
  };
  Rendered rendered(const std::string& name, const Renderer& render, uint64_t inputs_version = 0);
  // How many renders each output cost so far (netprof_admin_renders_total).
  std::map<std::string, uint64_t> render_counts() const;
  // Snapshots published so far.
  uint64_t generation() const;

 private:
  void run();
  bool collect_locked(bool workers_stopped);  // collect_mu_ held; true if anything changed
  void publish_locked();
  void load_connections(RouteTableSnapshot& table) const;  // the sum over workers

  const StatsHubOptions options_;
  const HttpMetricsOptions metrics_options_;
  std::shared_ptr<RouteNamer> namer_;
  std::deque<ConnectionCounters> connections_;  // per worker; a deque never moves them
  std::vector<ExchangePipeline*> workers_;

  std::mutex collect_mu_;  // serialises collections; guards the cumulative tables
  RouteStore cumulative_;
  HttpMetrics cumulative_metrics_;
  TlsStore cumulative_tls_;
  RouteTableSnapshot last_connections_;  // connection counters of the last snapshot
  bool workers_stopped_ = false;          // set by collect_now(true); later calls own them too
  uint64_t flight_window_ = 0;            // the window the cumulative store shows

  mutable std::mutex snapshot_mu_;  // guards snapshot_ (held only to copy a shared_ptr)
  std::shared_ptr<const StatsSnapshot> snapshot_;

  struct Cached {
    std::shared_ptr<const std::string> bytes;
    std::chrono::steady_clock::time_point rendered_at;
    uint64_t generation = 0;
    uint64_t inputs_version = 0;
    bool rendering = false;
    uint64_t renders = 0;
    std::string etag;
  };
  const uint64_t etag_nonce_;  // random per process: a tag from before a restart never matches
  uint64_t etag_sequence_ = 0;  // guarded by render_mu_
  mutable std::mutex render_mu_;  // guards cache_
  std::condition_variable render_done_;
  std::map<std::string, Cached> cache_;

  std::mutex run_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace netprof
