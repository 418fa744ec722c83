// Per-URL statistics: one entry per (scope, method, route), bounded in number. It is the
// ExchangeSink the trackers report to. Thread-safe: the relay records, reporters read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.h"
#include "stats/connection_counters.h"
#include "stats/histogram.h"

namespace netprof {

class RouteNamer;       // routes/route_namer.h: raw path -> route (query dropped, templated)
class AssetClassifier;  // stats/asset_classifier.h

struct StoreLimits {
  size_t max_routes = 10000;  // past this, new keys go to the single overflow entry
};

// The most recent exchange of a route, as the origin printed it.
struct LastSample {
  int64_t started_ms = 0;  // wall clock (epoch ms) of the request's first byte
  double time_ms = 0;      // latency (request headers -> response headers)
  uint16_t status = 0;
  std::string state;       // reason phrase, or the failure ("connection reset", ...); at most
                           // kMaxStateBytes so that updating it never allocates
  static constexpr size_t kMaxStateBytes = 64;
};

struct RouteStats {
  uint32_t scope = 0;
  std::string method;      // "GET"
  std::string route;       // "/users/{id}"
  bool file = false;       // static asset
  bool overflow = false;   // the catch-all entry for keys past max_routes
  bool truncated = false;  // the path was cut at the tracker's limit: long paths may share it
  uint64_t count = 0;
  uint64_t errors = 0;     // no complete response, or status >= 500
  // status code -> count (0 = no response). Allocates only the first time a route sees a
  // status code; after that counting is a lookup.
  std::map<uint16_t, uint64_t> status;
  LatencyHistogram latency;      // origin latency, microseconds
  LatencyHistogram total_time;   // to the last response byte, microseconds
  uint64_t request_bytes = 0, response_bytes = 0;
  uint64_t request_body_bytes = 0, response_body_bytes = 0;
  int64_t first_seen_ms = 0;
  LastSample last;
};

class RouteStore final : public ExchangeSink {
 public:
  // A null namer or classifier means the defaults (query dropped; default extensions).
  RouteStore(StoreLimits limits, std::shared_ptr<RouteNamer> namer,
             std::shared_ptr<const AssetClassifier> assets);
  ~RouteStore() override;

  void on_exchange(const Exchange& exchange) override;
  // Counts into connections().unparsed, so the relay must not count it again.
  void on_unparsed_connection(uint32_t scope) override;

  ConnectionCounters& connections() { return connections_; }
  const ConnectionCounters& connections() const { return connections_; }

  // Calls fn for every entry under the store's lock; keep fn short, and do not call back
  // into the store from it (the lock is not recursive).
  void for_each(const std::function<void(const RouteStats&)>& fn) const;
  size_t size() const;                  // entries for_each visits, the overflow entry included
  uint64_t overflowed_requests() const;  // exchanges counted in the overflow entry
  // Drops every entry of `scope` (node mode: a pod gone for longer than its expiry time).
  // Returns how many were dropped. Counts already folded into the overflow entry stay there.
  size_t erase_scope(uint32_t scope);

  // Wall-clock epoch ms for a monotonic timestamp (fixed offset taken at construction).
  int64_t epoch_ms(MonoNanos mono) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ConnectionCounters connections_;
};

}  // namespace netprof
