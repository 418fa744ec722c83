#include "stats/route_store.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>

#include "base/clock.h"
#include "routes/grpc_route.h"
#include "routes/route_namer.h"
#include "stats/asset_classifier.h"

namespace netprof {
namespace {

// The report names a method llhttp does not know by its number.
std::string method_text(uint8_t method) {
  const std::string_view name = http_method_name(method);
  return name.empty() ? "METHOD_" + std::to_string(method) : std::string(name);
}

// Keys carry their hash. libstdc++ does not cache hashes for a custom hasher, so without this
// every probe rehashes the neighbouring keys of its bucket and memcmp()s them. A lookup builds
// a LookupKey over the scratch string: no allocation per request.
struct LookupKey {
  std::string_view bytes;
  size_t hash;
};
struct StoredKey {
  std::string bytes;
  size_t hash;
};
struct KeyHash {
  using is_transparent = void;
  size_t operator()(const StoredKey& k) const { return k.hash; }
  size_t operator()(const LookupKey& k) const { return k.hash; }
};
struct KeyEqual {
  using is_transparent = void;
  bool operator()(const StoredKey& a, const StoredKey& b) const {
    return a.hash == b.hash && a.bytes == b.bytes;
  }
  bool operator()(const StoredKey& a, const LookupKey& b) const {
    return a.hash == b.hash && a.bytes == b.bytes;
  }
  bool operator()(const LookupKey& a, const StoredKey& b) const { return (*this)(b, a); }
};

constexpr double kNanosPerMicro = 1e3;
constexpr double kNanosPerMilli = 1e6;

}  // namespace

struct RouteStore::Impl {
  StoreLimits limits;
  std::shared_ptr<RouteNamer> namer;
  std::shared_ptr<const AssetClassifier> assets;
  int64_t wall_minus_mono_ns = 0;
  uint64_t flight_window = 0;
  MonoNanos flight_window_ends = 0;

  // Scratch strings keep their capacity, so a known key costs no allocation.
  std::string route_scratch;
  std::string key_scratch;
  std::unordered_map<StoredKey, RouteStats, KeyHash, KeyEqual> routes;
  std::unique_ptr<RouteStats> overflow;
  uint64_t overflowed = 0;
  // Deferred histogram samples (limits.defer_histograms); entries are stable (node-based map,
  // overflow on the heap). A negative value means "not recorded" (no response, no end).
  struct Sample {
    RouteStats* entry;
    double latency_us, total_us;
  };
  std::vector<Sample> samples;

  RouteStats& find_or_create(const Exchange& exchange, std::string_view route,
                             int64_t started_ms);
  RouteStats& overflow_entry(int64_t first_seen_ms);
  void count(RouteStats& stats, const Exchange& exchange, int64_t started_ms);
};

RouteStore::RouteStore(StoreLimits limits, std::shared_ptr<RouteNamer> namer,
                       std::shared_ptr<const AssetClassifier> assets)
    : impl_(std::make_unique<Impl>()) {
  impl_->limits = limits;
  impl_->namer = namer ? std::move(namer) : std::make_shared<RouteNamer>();
  impl_->assets = assets ? std::move(assets) : std::make_shared<const AssetClassifier>();
  impl_->wall_minus_mono_ns = unix_nanos() - mono_nanos();
  impl_->routes.reserve(std::min<size_t>(limits.max_routes, 1024));
}

RouteStore::~RouteStore() = default;

int64_t RouteStore::epoch_ms(MonoNanos mono) const {
  return (mono + impl_->wall_minus_mono_ns) / 1'000'000;
}

RouteStats& RouteStore::Impl::overflow_entry(int64_t first_seen_ms) {
  if (!overflow) {
    overflow = std::make_unique<RouteStats>();
    overflow->method = "*";
    overflow->route = "{overflow}";
    overflow->overflow = true;
    overflow->first_seen_ms = first_seen_ms;
    overflow->last.state.reserve(LastSample::kMaxStateBytes);
  }
  return *overflow;
}

RouteStats& RouteStore::Impl::find_or_create(const Exchange& exchange, std::string_view route,
                                             int64_t started_ms) {
  // Key: 4 bytes of scope, 1 byte of method, 1 of protocol and gRPC, then the route.
  key_scratch.clear();
  key_scratch.append(reinterpret_cast<const char*>(&exchange.scope), sizeof exchange.scope);
  key_scratch.push_back(static_cast<char>(exchange.method));
  key_scratch.push_back(static_cast<char>(static_cast<int>(exchange.protocol) * 2 + exchange.grpc));
  key_scratch.append(route);
  const LookupKey key{key_scratch, std::hash<std::string_view>{}(key_scratch)};
  if (auto it = routes.find(key); it != routes.end()) return it->second;

  if (routes.size() >= limits.max_routes) {
    ++overflowed;
    return overflow_entry(started_ms);
  }
  RouteStats& stats = routes.try_emplace(StoredKey{key_scratch, key.hash}).first->second;
  stats.scope = exchange.scope;
  stats.method = method_text(exchange.method);
  stats.route = route;
  stats.file = assets->is_asset(route);
  stats.truncated = exchange.path_truncated;
  stats.protocol = exchange.protocol;
  stats.grpc = exchange.grpc;
  stats.first_seen_ms = started_ms;
  return stats;
}

void RouteStore::Impl::count(RouteStats& stats, const Exchange& exchange,
                             int64_t started_ms) {
  const bool failed = exchange.outcome != ExchangeOutcome::kCompleted;
  ++stats.count;
  stats.errors += counts_as_error(exchange.outcome, exchange.status, exchange.grpc_status);
  ++stats.status[exchange.status];  // allocates only for a status this route has not seen
  if (exchange.grpc && exchange.grpc_status >= 0) {
    ++stats.grpc_status[static_cast<uint8_t>(exchange.grpc_status)];
  }
  const MonoNanos latency = exchange.latency();
  const double latency_us =
      exchange.response_headers_done ? static_cast<double>(latency) / kNanosPerMicro : -1;
  const double total_us =
      exchange.response_done ? static_cast<double>(exchange.total_time()) / kNanosPerMicro : -1;
  if (limits.defer_histograms && samples.size() < samples.capacity()) {
    samples.push_back({&stats, latency_us, total_us});  // within capacity: no allocation
  } else if (limits.defer_histograms && samples.size() < limits.max_deferred_samples) {
    samples.reserve(std::min(limits.max_deferred_samples, samples.capacity() * 2 + 1024));
    samples.push_back({&stats, latency_us, total_us});
  } else {
    if (latency_us >= 0) stats.latency.record(latency_us);
    if (total_us >= 0) stats.total_time.record(total_us);
  }
  stats.request_bytes += exchange.request_bytes;
  stats.response_bytes += exchange.response_bytes;
  stats.request_body_bytes += exchange.request_body_bytes;
  stats.response_body_bytes += exchange.response_body_bytes;

  LastSample& last = stats.last;
  last.started_ms = started_ms;
  last.time_ms = static_cast<double>(latency) / kNanosPerMilli;
  last.status = exchange.status;
  const std::string_view state = failed ? outcome_text(exchange.outcome) : exchange.reason;
  last.state.assign(state.substr(0, LastSample::kMaxStateBytes));
}

void route_of(const Exchange& exchange, RouteNamer& namer, std::string& out,
              RouteNamer::Scratch* scratch) {
  if (exchange.grpc) {
    grpc_route_of(exchange.path, out);  // the full method, never templated
  } else if (scratch != nullptr) {
    namer.name(exchange.path, out, *scratch);
  } else {
    namer.name(exchange.path, out);
  }
}

void RouteStore::on_exchange(const Exchange& exchange) {
  route_of(exchange, *impl_->namer, impl_->route_scratch);
  record(exchange, impl_->route_scratch);
}

void RouteStore::record(const Exchange& exchange, std::string_view route) {
  const int64_t started_ms = epoch_ms(exchange.request_first_byte);
  RouteStats& stats = impl_->find_or_create(exchange, route, started_ms);
  impl_->count(stats, exchange, started_ms);
  if (const FlightOptions& flight = impl_->limits.flight; flight.per_route != 0) {
    if (!stats.candidates) stats.candidates = std::make_shared<FlightCandidates>();  // once
    stats.candidates->offer(exchange, started_ms, flight);
  }
}

void RouteStore::set_flight_window(uint64_t window, MonoNanos ends_at) {
  impl_->flight_window_ends = ends_at;
  if (window == impl_->flight_window) return;
  impl_->flight_window = window;
  for (auto& [key, stats] : impl_->routes) stats.flight = roll_flight(stats.flight, window);
  if (impl_->overflow) impl_->overflow->flight = roll_flight(impl_->overflow->flight, window);
}

namespace {

void merge_flight_into(RouteStats& into, RouteStats& from, const FlightOptions& options,
                       uint64_t window, MonoNanos window_ends) {
  if (options.per_route == 0 || !from.candidates) return;
  into.flight = merge_flight(into.flight, *from.candidates, options.per_route, window);
  if (window_ends != 0)
    from.candidates->set_floor(flight_floor(into.flight, options.per_route), window_ends);
}

}  // namespace

namespace {

void merge_entry(RouteStats& into, const RouteStats& from) {
  into.count += from.count;
  into.errors += from.errors;
  for (const auto& [code, n] : from.status) {
    if (n != 0) into.status[code] += n;
  }
  for (const auto& [code, n] : from.grpc_status) {
    if (n != 0) into.grpc_status[code] += n;
  }
  into.latency.merge(from.latency);
  into.total_time.merge(from.total_time);
  into.request_bytes += from.request_bytes;
  into.response_bytes += from.response_bytes;
  into.request_body_bytes += from.request_body_bytes;
  into.response_body_bytes += from.response_body_bytes;
  into.first_seen_ms = std::min(into.first_seen_ms, from.first_seen_ms);
  if (into.count == from.count || from.last.started_ms >= into.last.started_ms) {
    into.last = from.last;
  }
}

void clear_entry(RouteStats& s) {
  s.count = s.errors = 0;
  for (auto& entry : s.status) entry.second = 0;  // keeps the nodes: no allocation next time
  for (auto& entry : s.grpc_status) entry.second = 0;
  s.latency.clear();
  s.total_time.clear();
  s.request_bytes = s.response_bytes = s.request_body_bytes = s.response_body_bytes = 0;
  // A route that kept records since the last hand-over keeps the lists' capacity (no
  // allocation next time); one that kept none gives it back but keeps its floor. (A route
  // not served at all is dropped by clear_counts.)
  if (s.candidates && s.candidates->empty()) {
    s.candidates->release();
  } else if (s.candidates) {
    s.candidates->clear();
  }
}

}  // namespace

void RouteStore::merge_from(RouteStore& delta) {
  Impl& m = *impl_;
  const auto& samples = delta.impl_->samples;
  // Where each delta entry went, for binning its deferred samples.
  std::unordered_map<const RouteStats*, RouteStats*> targets;
  if (!samples.empty()) targets.reserve(delta.impl_->routes.size() + 1);
  for (auto& [key, from] : delta.impl_->routes) {
    if (from.count == 0) continue;
    RouteStats* into = nullptr;
    if (auto it = m.routes.find(key); it != m.routes.end()) {
      into = &it->second;
    } else if (m.routes.size() < m.limits.max_routes) {
      RouteStats& created = m.routes.try_emplace(key).first->second;
      created.scope = from.scope;
      created.method = from.method;
      created.route = from.route;
      created.file = from.file;
      created.truncated = from.truncated;
      created.protocol = from.protocol;
      created.grpc = from.grpc;
      created.first_seen_ms = from.first_seen_ms;
      into = &created;
    } else {
      m.overflowed += from.count;
      into = &m.overflow_entry(from.first_seen_ms);
    }
    merge_entry(*into, from);
    merge_flight_into(*into, from, m.limits.flight, m.flight_window, m.flight_window_ends);
    if (!samples.empty()) targets.emplace(&from, into);
  }
  if (delta.impl_->overflow && delta.impl_->overflow->count != 0) {
    RouteStats& into = m.overflow_entry(delta.impl_->overflow->first_seen_ms);
    merge_entry(into, *delta.impl_->overflow);
    merge_flight_into(into, *delta.impl_->overflow, m.limits.flight, m.flight_window,
                      m.flight_window_ends);
    if (!samples.empty()) targets.emplace(delta.impl_->overflow.get(), &into);
  }
  m.overflowed += delta.impl_->overflowed;
  for (const Impl::Sample& sample : samples) {
    RouteStats* into = targets.at(sample.entry);
    if (sample.latency_us >= 0) into->latency.record(sample.latency_us);
    if (sample.total_us >= 0) into->total_time.record(sample.total_us);
  }
}

void RouteStore::clear_counts() {
  impl_->samples.clear();  // keeps the capacity
  // A route that counted nothing since the last clear was idle for a whole hand-over: the
  // delta store gives its entry back, so a worker holds memory only for the routes it is
  // serving (10,000 routes seen once each no longer stay in every worker's two buffers).
  std::erase_if(impl_->routes, [](const auto& entry) { return entry.second.count == 0; });
  for (auto& entry : impl_->routes) clear_entry(entry.second);
  if (impl_->overflow) clear_entry(*impl_->overflow);
  impl_->overflowed = 0;
}

bool RouteStore::has_counts() const {
  if (impl_->overflow && impl_->overflow->count != 0) return true;
  for (const auto& entry : impl_->routes) {
    if (entry.second.count != 0) return true;
  }
  return false;
}

void RouteTableSnapshot::set_connections(const ConnectionCounters& c) {
  accepted = active = unparsed = ambiguous_framing = upstream_failed = rejected = 0;
  untracked_streams = bytes_client_to_server = bytes_server_to_client = 0;
  add_connections(c);
}

void RouteTableSnapshot::add_connections(const ConnectionCounters& c) {
  auto load = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  accepted += load(c.accepted);
  active += load(c.active);
  unparsed += load(c.unparsed);
  ambiguous_framing += load(c.ambiguous_framing);
  upstream_failed += load(c.upstream_failed);
  rejected += load(c.rejected);
  untracked_streams += load(c.untracked_streams);
  bytes_client_to_server += load(c.bytes_client_to_server);
  bytes_server_to_client += load(c.bytes_server_to_client);
}

namespace {

DurationSummary summarize(const LatencyHistogram& h) {
  static constexpr double kQuantiles[] = {0.50, 0.90, 0.99};
  DurationSummary d;
  d.samples = h.count();
  d.min = h.min();
  d.mean = h.mean();
  d.max = h.max();
  double p[3] = {};
  h.quantiles(kQuantiles, p);
  d.p50 = p[0];
  d.p90 = p[1];
  d.p99 = p[2];
  return d;
}

}  // namespace

RouteSummary summarize(const RouteStats& s) {
  RouteSummary r;
  r.scope = s.scope;
  r.method = s.method;
  r.route = s.route;
  r.file = s.file;
  r.overflow = s.overflow;
  r.truncated = s.truncated;
  r.protocol = s.protocol;
  r.grpc = s.grpc;
  r.count = s.count;
  r.errors = s.errors;
  for (const auto& [code, n] : s.status) {
    if (n != 0) r.status.emplace_back(code, n);
  }
  for (const auto& [code, n] : s.grpc_status) {
    if (n != 0) r.grpc_status.emplace_back(code, n);
  }
  r.latency = summarize(s.latency);
  r.total_time = summarize(s.total_time);
  r.request_bytes = s.request_bytes;
  r.response_bytes = s.response_bytes;
  r.request_body_bytes = s.request_body_bytes;
  r.response_body_bytes = s.response_body_bytes;
  r.first_seen_ms = s.first_seen_ms;
  r.last = s.last;
  if (s.flight && !s.flight->empty()) r.flight = s.flight;
  return r;
}

RouteTableSnapshot RouteStore::snapshot() const {
  RouteTableSnapshot snap;
  snap.routes.reserve(size());
  for_each([&snap](const RouteStats& s) {
    if (s.count != 0) snap.routes.push_back(summarize(s));
  });
  snap.overflowed_requests = impl_->overflowed;
  snap.set_connections(connections_);
  return snap;
}

void RouteStore::on_unparsed_connection(uint32_t /*scope*/) {
  connections_.unparsed.fetch_add(1, std::memory_order_relaxed);
}

void RouteStore::on_untracked_stream(uint32_t /*scope*/) {
  connections_.untracked_streams.fetch_add(1, std::memory_order_relaxed);
}

void RouteStore::for_each(const std::function<void(const RouteStats&)>& fn) const {
  for (const auto& [key, stats] : impl_->routes) fn(stats);
  if (impl_->overflow) fn(*impl_->overflow);
}

size_t RouteStore::size() const {
  return impl_->routes.size() + (impl_->overflow ? 1 : 0);
}

size_t RouteStore::erase_scope(uint32_t scope) {
  std::erase_if(impl_->samples, [scope](const Impl::Sample& sample) {
    return !sample.entry->overflow && sample.entry->scope == scope;
  });
  return std::erase_if(impl_->routes,
                       [scope](const auto& entry) { return entry.second.scope == scope; });
}

uint64_t RouteStore::overflowed_requests() const {
  return impl_->overflowed;
}

}  // namespace netprof
