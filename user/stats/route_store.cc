#include "stats/route_store.h"

#include <llhttp.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "routes/route_namer.h"
#include "stats/asset_classifier.h"

namespace netprof {
namespace {

std::string method_text(uint8_t method) {
  switch (method) {
#define NETPROF_METHOD_CASE(num, name, string) \
  case num:                                    \
    return #string;
    HTTP_ALL_METHOD_MAP(NETPROF_METHOD_CASE)
#undef NETPROF_METHOD_CASE
    default:
      return "METHOD_" + std::to_string(method);
  }
}

std::string_view failure_text(ExchangeOutcome outcome) {
  switch (outcome) {
    case ExchangeOutcome::kCompleted: return {};
    case ExchangeOutcome::kClosedBeforeResponse: return "connection closed before response";
    case ExchangeOutcome::kResetBeforeResponse: return "connection reset";
    case ExchangeOutcome::kUpstreamFailed: return "upstream unreachable";
    case ExchangeOutcome::kParseError: return "unparseable response";
  }
  return "unknown failure";
}

int64_t clock_nanos(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
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

  mutable std::mutex mu;
  // Guarded by mu. Scratch strings keep their capacity, so a known key costs no allocation.
  std::string route_scratch;
  std::string key_scratch;
  std::unordered_map<StoredKey, RouteStats, KeyHash, KeyEqual> routes;
  std::unique_ptr<RouteStats> overflow;
  uint64_t overflowed = 0;

  RouteStats& find_or_create(const Exchange& exchange, int64_t started_ms);
  void count(RouteStats& stats, const Exchange& exchange, int64_t started_ms) const;
};

RouteStore::RouteStore(StoreLimits limits, std::shared_ptr<RouteNamer> namer,
                       std::shared_ptr<const AssetClassifier> assets)
    : impl_(std::make_unique<Impl>()) {
  impl_->limits = limits;
  impl_->namer = namer ? std::move(namer) : std::make_shared<RouteNamer>();
  impl_->assets = assets ? std::move(assets) : std::make_shared<const AssetClassifier>();
  impl_->wall_minus_mono_ns = clock_nanos(CLOCK_REALTIME) - clock_nanos(CLOCK_MONOTONIC);
  impl_->routes.reserve(std::min<size_t>(limits.max_routes, 1024));
}

RouteStore::~RouteStore() = default;

int64_t RouteStore::epoch_ms(MonoNanos mono) const {
  return (mono + impl_->wall_minus_mono_ns) / 1'000'000;
}

RouteStats& RouteStore::Impl::find_or_create(const Exchange& exchange, int64_t started_ms) {
  namer->name(exchange.path, route_scratch);
  // Key: 4 bytes of scope, 1 byte of method, then the route.
  key_scratch.clear();
  key_scratch.append(reinterpret_cast<const char*>(&exchange.scope), sizeof exchange.scope);
  key_scratch.push_back(static_cast<char>(exchange.method));
  key_scratch.append(route_scratch);
  const LookupKey key{key_scratch, std::hash<std::string_view>{}(key_scratch)};
  if (auto it = routes.find(key); it != routes.end()) return it->second;

  if (routes.size() >= limits.max_routes) {
    ++overflowed;
    if (!overflow) {
      overflow = std::make_unique<RouteStats>();
      overflow->method = "*";
      overflow->route = "{overflow}";
      overflow->overflow = true;
      overflow->first_seen_ms = started_ms;
      overflow->last.state.reserve(LastSample::kMaxStateBytes);
    }
    return *overflow;
  }
  RouteStats& stats = routes.try_emplace(StoredKey{key_scratch, key.hash}).first->second;
  stats.scope = exchange.scope;
  stats.method = method_text(exchange.method);
  stats.route = route_scratch;
  stats.file = assets->is_asset(route_scratch);
  stats.truncated = exchange.path_truncated;
  stats.first_seen_ms = started_ms;
  stats.last.state.reserve(LastSample::kMaxStateBytes);
  return stats;
}

void RouteStore::Impl::count(RouteStats& stats, const Exchange& exchange,
                             int64_t started_ms) const {
  const bool failed = exchange.outcome != ExchangeOutcome::kCompleted;
  ++stats.count;
  stats.errors += failed || exchange.status >= 500;
  ++stats.status[exchange.status];  // allocates only for a status this route has not seen
  const MonoNanos latency = exchange.latency();
  if (exchange.response_headers_done) {
    stats.latency.record(static_cast<double>(latency) / kNanosPerMicro);
  }
  if (exchange.response_done) {
    stats.total_time.record(static_cast<double>(exchange.total_time()) / kNanosPerMicro);
  }
  stats.request_bytes += exchange.request_bytes;
  stats.response_bytes += exchange.response_bytes;
  stats.request_body_bytes += exchange.request_body_bytes;
  stats.response_body_bytes += exchange.response_body_bytes;

  LastSample& last = stats.last;
  last.started_ms = started_ms;
  last.time_ms = static_cast<double>(latency) / kNanosPerMilli;
  last.status = exchange.status;
  const std::string_view state = failed ? failure_text(exchange.outcome) : exchange.reason;
  last.state.assign(state.substr(0, LastSample::kMaxStateBytes));
}

void RouteStore::on_exchange(const Exchange& exchange) {
  const int64_t started_ms = epoch_ms(exchange.request_first_byte);
  std::lock_guard lock(impl_->mu);
  RouteStats& stats = impl_->find_or_create(exchange, started_ms);
  impl_->count(stats, exchange, started_ms);
}

void RouteStore::on_unparsed_connection(uint32_t /*scope*/) {
  connections_.unparsed.fetch_add(1, std::memory_order_relaxed);
}

void RouteStore::for_each(const std::function<void(const RouteStats&)>& fn) const {
  std::lock_guard lock(impl_->mu);
  for (const auto& [key, stats] : impl_->routes) fn(stats);
  if (impl_->overflow) fn(*impl_->overflow);
}

size_t RouteStore::size() const {
  std::lock_guard lock(impl_->mu);
  return impl_->routes.size() + (impl_->overflow ? 1 : 0);
}

size_t RouteStore::erase_scope(uint32_t scope) {
  std::lock_guard lock(impl_->mu);
  return std::erase_if(impl_->routes,
                       [scope](const auto& entry) { return entry.second.scope == scope; });
}

uint64_t RouteStore::overflowed_requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->overflowed;
}

}  // namespace netprof
