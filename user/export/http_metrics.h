// Per-series HTTP metrics after the OpenTelemetry HTTP semantic conventions: one series per
// (method, route, status code, failure kind, gRPC status) with fixed-bucket histograms of the request
// duration and of the request and response body sizes. Each relay worker records into its
// own (pipeline/exchange_pipeline.h), the StatsHub merges them into a cumulative one and
// publishes snapshots; /metrics and the OTLP pusher read those snapshots. The internal lock is
// therefore never contended (one owner at a time); it only keeps misuse memory-safe.
//
// Why not derive these from the RouteStore: the store keeps one latency histogram per
// (method, route), while Prometheus users slice by status code, and wants exact counts per
// configured bucket rather than the store's 1%-accurate log buckets.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "export/prometheus_text.h"  // Exemplar
#include "export/routed_tee.h"

namespace netprof {

struct HttpMetricsOptions {
  // Upper bounds, ascending. The duration default is OpenTelemetry's for http.server.request.duration.
  std::vector<double> duration_buckets_s = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                            0.5,   0.75, 1,     2.5,  5,     7.5, 10};
  std::vector<double> size_buckets_bytes = {0, 100, 1000, 10'000, 100'000, 1'000'000, 10'000'000,
                                            100'000'000};
  size_t max_series = 2000;  // more (method, route, status) series go to route "{overflow}"
};

// Returns an error text, or empty when the bounds are non-empty, finite and ascending.
std::string check_buckets(const std::vector<double>& bounds);

struct BucketCounts {
  std::vector<uint64_t> counts;  // size = bounds + 1; the last is above every bound
  uint64_t count = 0;
  double sum = 0, min = 0, max = 0;
  // Returns the bucket the value fell in.
  size_t record(const std::vector<double>& bounds, double value);
  void merge(const BucketCounts& other);
  void clear();
};

struct HttpSeries {
  uint32_t scope = 0;            // the listener's scope (node mode: one per pod)
  std::string method, route;
  uint16_t status = 0;           // 0: no response headers
  std::string_view error_type;   // empty when the exchange completed; else a static string
  bool grpc = false;             // a gRPC call: route is /package.Service/Method
  int16_t grpc_status = -1;      // its grpc-status; -1 when none was seen
  uint64_t requests = 0;         // every exchange, answered or not
  BucketCounts duration_s, request_body_bytes, response_body_bytes;  // answered exchanges only
  // At most one exemplar per duration bucket, only for buckets that have one, ascending by
  // bucket: a recent exchange that fell in it, by trace id when one was sent, else by request
  // id. In a worker's buffer, the first of each bucket since the hand-over (a traced one
  // preferred). Sparse because most series see a few buckets: a dense array per series was
  // 1.3 KiB in the store, in each worker's buffer and in each snapshot.
  std::vector<Exemplar> duration_exemplars;
  int64_t start_unix_ns = 0;     // when the series was created (OTLP start time)
};

struct HttpMetricsSnapshot {
  std::vector<HttpSeries> series;
  uint64_t overflowed_requests = 0;  // exchanges counted under route "{overflow}"
};

class HttpMetrics final : public RoutedSink {
 public:
  explicit HttpMetrics(HttpMetricsOptions options = {});
  ~HttpMetrics() override;

  void on_routed_exchange(const Exchange& exchange, std::string_view route) override;

  HttpMetricsSnapshot snapshot() const;  // copies under the lock; call off the relay thread
  // Adds every series of `delta` that counted something (counts and buckets add). Series
  // past max_series go to route "{overflow}", as on the recording side.
  void merge_from(const HttpMetrics& delta);
  // Zeroes every count, keeping the series (and their allocations) that counted something
  // since the last clear; drops the others.
  void clear_counts();
  bool has_counts() const;
  size_t series_count() const;
  // Drops every series of `scope` (node mode: a pod gone for longer than its expiry time).
  size_t erase_scope(uint32_t scope);
  const HttpMetricsOptions& options() const { return options_; }

 private:
  struct Impl;
  HttpMetricsOptions options_;
  std::unique_ptr<Impl> impl_;
};

// http.request.method: the method's name, "_OTHER" for one llhttp does not know (OpenTelemetry
// semantic conventions).
std::string_view method_name(uint8_t llhttp_method);

}  // namespace netprof
