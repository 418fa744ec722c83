// Per-URL statistics: one entry per (scope, method, protocol, gRPC or not, route), bounded in
// number. A gRPC call's route is its full method (routes/grpc_route.h), never templated.
//
// Not thread-safe, on purpose: a store has one owner at a time. Each relay worker records
// into stores of its own (pipeline/exchange_pipeline.h: two, double-buffered), hands the
// filled one to the aggregator, which merges it into its cumulative store and clears it;
// readers only ever see immutable snapshots (RouteTableSnapshot). So nothing a reader does
// can make the relay wait.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.h"
#include "routes/route_namer.h"
#include "stats/connection_counters.h"
#include "stats/flight_recorder.h"
#include "stats/histogram.h"
#include "stats/tls_store.h"

namespace netprof {

// routes/route_namer.h: RouteNamer turns a raw path into a route (query dropped, templated).
class AssetClassifier;  // stats/asset_classifier.h

struct StoreLimits {
  size_t max_routes = 10000;  // past this, new keys go to the single overflow entry
  // A relay worker's delta store: latencies are appended to a flat sample list (24 bytes
  // each, capacity kept across clears) and binned into histograms by merge_from() on the
  // aggregator's thread, so the worker's two buffers hold no histogram windows at all. Past
  // max_deferred_samples (the aggregator is late) they go into the entry's own histogram:
  // nothing is lost, memory stays bounded.
  bool defer_histograms = false;
  size_t max_deferred_samples = size_t{1} << 18;
  // The flight recorder (stats/flight_recorder.h): a store that record()s keeps candidates,
  // one that merge_from()s keeps the log. Off (per_route 0) unless set.
  FlightOptions flight{};
};

// The most recent exchange of a route, as the origin printed it.
struct LastSample {
  int64_t started_ms = 0;  // wall clock (epoch ms) of the request's first byte
  double time_ms = 0;      // latency (request headers -> response headers)
  uint16_t status = 0;
  std::string state;       // reason phrase, or the failure ("connection reset", ...); at most
                           // kMaxStateBytes: its capacity grows to the longest state the
                           // route has seen, so updating it allocates at most a few times
  static constexpr size_t kMaxStateBytes = 64;
};

// Counts per code (HTTP status, gRPC status), ascending by code. A route sees a few codes, so
// a sorted vector: 16 bytes a code, where a std::map took a 48-byte node each and 48 inline.
template <class Code>
class CodeCounts {
 public:
  // The count of `code`, added as 0 the first time: only then does it allocate.
  uint64_t& operator[](Code code) {
    auto it = std::lower_bound(counts_.begin(), counts_.end(), code,
                               [](const auto& entry, Code c) { return entry.first < c; });
    if (it == counts_.end() || it->first != code) it = counts_.insert(it, {code, 0});
    return it->second;
  }
  // The count of a code seen before; std::out_of_range otherwise (as std::map::at).
  uint64_t at(Code code) const {
    for (const auto& [c, n] : counts_) {
      if (c == code) return n;
    }
    throw std::out_of_range("no such code");
  }
  auto begin() { return counts_.begin(); }
  auto end() { return counts_.end(); }
  auto begin() const { return counts_.begin(); }
  auto end() const { return counts_.end(); }
  bool operator==(const CodeCounts&) const = default;

 private:
  std::vector<std::pair<Code, uint64_t>> counts_;
};

struct RouteStats {
  uint32_t scope = 0;
  std::string method;      // "GET"
  std::string route;       // "/users/{id}"
  bool file = false;       // static asset
  bool overflow = false;   // the catch-all entry for keys past max_routes
  bool truncated = false;  // the path was cut at the tracker's limit: long paths may share it
  WireProtocol protocol = WireProtocol::kHttp1;  // entries are per protocol
  bool grpc = false;       // the route is a gRPC method, "/package.Service/Method"
  uint64_t count = 0;
  uint64_t errors = 0;     // no complete response, status >= 500, or a non-zero gRPC status
  // gRPC status code -> count (gRPC entries only; calls that ended without one are not here).
  // Allocates only for a code the entry has not seen, like `status`.
  CodeCounts<uint8_t> grpc_status;
  // status code -> count (0 = no response). Allocates only the first time a route sees a
  // status code; after that counting is a lookup.
  CodeCounts<uint16_t> status;
  LatencyHistogram latency;      // origin latency, microseconds
  LatencyHistogram total_time;   // to the last response byte, microseconds
  uint64_t request_bytes = 0, response_bytes = 0;
  uint64_t request_body_bytes = 0, response_body_bytes = 0;
  int64_t first_seen_ms = 0;
  LastSample last;
  // Flight recorder (stats/flight_recorder.h). A worker's store: its candidates since the last
  // hand-over, allocated on the route's first record, kept with their capacity while the route
  // is served, given back after a hand-over without any (shared_ptr only so that a RouteStats
  // can still be copied, as tests do). The aggregator's store: the immutable view.
  std::shared_ptr<FlightCandidates> candidates;
  FlightViewPtr flight;
};

// A histogram as the outputs show it (microseconds; all 0 when empty).
struct DurationSummary {
  uint64_t samples = 0;
  double min = 0, mean = 0, max = 0, p50 = 0, p90 = 0, p99 = 0;
};

// One entry as the outputs read it: the quantiles computed once, no histogram kept, so a
// snapshot costs a few hundred bytes per route whatever the latencies' range.
struct RouteSummary {
  uint32_t scope = 0;
  std::string method, route;
  bool file = false, overflow = false, truncated = false;
  WireProtocol protocol = WireProtocol::kHttp1;
  bool grpc = false;
  uint64_t count = 0, errors = 0;
  std::vector<std::pair<uint16_t, uint64_t>> status;  // ascending codes, non-zero counts
  std::vector<std::pair<uint8_t, uint64_t>> grpc_status;  // likewise (gRPC entries only)
  DurationSummary latency, total_time;
  uint64_t request_bytes = 0, response_bytes = 0;
  uint64_t request_body_bytes = 0, response_body_bytes = 0;
  int64_t first_seen_ms = 0;
  LastSample last;
  FlightViewPtr flight;  // null when nothing was recorded (or off); shared, not copied
};
RouteSummary summarize(const RouteStats& stats);

// An immutable summary of a store's entries, what reports and the admin API read.
struct RouteTableSnapshot {
  std::vector<RouteSummary> routes;  // in no particular order; the overflow entry included
  uint64_t overflowed_requests = 0;
  // Connection counters when the snapshot was taken.
  uint64_t accepted = 0, active = 0, unparsed = 0, ambiguous_framing = 0, upstream_failed = 0,
           rejected = 0, untracked_streams = 0;
  uint64_t bytes_client_to_server = 0, bytes_server_to_client = 0;
  void set_connections(const ConnectionCounters& c);
  void add_connections(const ConnectionCounters& c);  // another worker's counters
  // TLS connections per (scope, port, server name, ALPN, version), ordered by key.
  std::vector<TlsSummary> tls;
};

// The route an exchange is counted under: a gRPC call's full method as it is; anything else
// named by `namer` (query dropped, templated). The one rule every sink's route follows. With
// `scratch` (relay workers sharing a concurrent namer), the thread-safe naming.
void route_of(const Exchange& exchange, RouteNamer& namer, std::string& out,
              RouteNamer::Scratch* scratch = nullptr);

class RouteStore final : public ExchangeSink {
 public:
  // A null namer or classifier means the defaults (query dropped; default extensions).
  RouteStore(StoreLimits limits, std::shared_ptr<RouteNamer> namer,
             std::shared_ptr<const AssetClassifier> assets);
  ~RouteStore() override;

  // Names the route with the store's namer (route_of()), then record()s.
  void on_exchange(const Exchange& exchange) override;
  // Counts an exchange whose route is already named (the pipeline names once for every sink).
  void record(const Exchange& exchange, std::string_view route);
  // Counts into connections().unparsed, so the relay must not count it again.
  void on_unparsed_connection(uint32_t scope) override;
  // Counts into connections().untracked_streams.
  void on_untracked_stream(uint32_t scope) override;

  ConnectionCounters& connections() { return connections_; }
  const ConnectionCounters& connections() const { return connections_; }

  // Adds every entry of `delta` with a non-zero count (same key -> counts add, histograms
  // merge, the later last sample wins). Keys past max_routes go to the overflow entry, so
  // nothing is lost when workers' key sets together exceed the cap. Totals are exact; past the
  // cap, which route an exchange is attributed to (a route or {overflow}) can depend on the
  // order in which the delta buffers first saw the keys.
  void merge_from(RouteStore& delta);
  // Zeroes every count, keeping the keys and their allocations that counted something since
  // the last clear: a recycled delta store records the routes it is serving without
  // allocating. Entries that counted nothing since the last clear are dropped.
  void clear_counts();
  // Whether anything was counted since construction or the last clear_counts().
  bool has_counts() const;
  // A summary of every entry with a non-zero count, and the connection counters.
  RouteTableSnapshot snapshot() const;

  void for_each(const std::function<void(const RouteStats&)>& fn) const;
  size_t size() const;                  // entries for_each visits, the overflow entry included
  uint64_t overflowed_requests() const;  // exchanges counted in the overflow entry
  // Drops every entry of `scope` (node mode: a pod gone for longer than its expiry time).
  // Returns how many were dropped. Counts already folded into the overflow entry stay there.
  size_t erase_scope(uint32_t scope);

  // The flight recorder's window (monotonic time / window length) that merges go into and
  // snapshots show: each route's slowest list starts over in a new one (roll_flight).
  // `ends_at` (monotonic ns; 0 = unknown): when it ends. Until then, merge_from() tells each
  // delta entry's candidates what the route's slowest list already beats (set_floor).
  void set_flight_window(uint64_t window, MonoNanos ends_at = 0);

  // Wall-clock epoch ms for a monotonic timestamp (fixed offset taken at construction).
  int64_t epoch_ms(MonoNanos mono) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ConnectionCounters connections_;
};

}  // namespace netprof
