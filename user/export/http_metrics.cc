#include "export/http_metrics.h"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "base/clock.h"

namespace netprof {
namespace {

struct ViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

constexpr std::string_view kOverflowRoute = "{overflow}";
constexpr double kNanosPerSecond = 1e9;

// The exemplar of `bucket` in a sparse list (ascending by bucket), inserted empty if missing.
Exemplar& exemplar_slot(std::vector<Exemplar>& list, size_t bucket) {
  auto it = std::lower_bound(list.begin(), list.end(), bucket,
                             [](const Exemplar& x, size_t b) { return x.bucket < b; });
  if (it == list.end() || it->bucket != bucket) {
    it = list.insert(it, Exemplar{});
    it->bucket = static_cast<uint16_t>(bucket);
  }
  return *it;
}

// Keeps `exchange` as the exemplar of its duration bucket if the bucket has none yet (since the
// buffer was cleared), or only an untraced one and this one is traced. Cheap otherwise.
void offer_exemplar(HttpSeries& s, size_t bucket, const Exchange& exchange, double seconds) {
  const bool traced = !exchange.trace_id.empty();
  if (!traced && exchange.connection_id == 0) return;  // nothing to look it up by
  if (bucket > UINT16_MAX) return;                      // past what an exemplar can name
  Exemplar& x = exemplar_slot(s.duration_exemplars, bucket);
  if (x.unix_ms != 0 && (x.trace || !traced)) return;
  const int64_t now_ms = unix_ms();
  if (traced) {
    x.set(seconds, now_ms, true, exchange.trace_id);
    return;
  }
  // "<connection>-<sequence>" without a std::string (http/exchange.h request_id_text).
  char text[48];
  char* end = std::to_chars(text, text + 20, exchange.connection_id).ptr;
  *end++ = '-';
  end = std::to_chars(end, text + sizeof text, exchange.sequence).ptr;
  x.set(seconds, now_ms, false, std::string_view(text, static_cast<size_t>(end - text)));
}

}  // namespace

std::string check_buckets(const std::vector<double>& bounds) {
  if (bounds.empty()) return "at least one bucket bound is needed";
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) return "bucket bounds must be finite numbers";
    if (i > 0 && bounds[i] <= bounds[i - 1]) return "bucket bounds must be strictly ascending";
  }
  return {};
}

std::string_view method_name(uint8_t method) {
  const std::string_view name = http_method_name(method);
  return name.empty() ? std::string_view("_OTHER") : name;
}

size_t BucketCounts::record(const std::vector<double>& bounds, double value) {
  // Prometheus buckets are inclusive upper bounds: the first bound >= value.
  const auto it = std::lower_bound(bounds.begin(), bounds.end(), value);
  const auto bucket = static_cast<size_t>(it - bounds.begin());
  ++counts[bucket];
  if (count == 0 || value < min) min = value;
  if (count == 0 || value > max) max = value;
  ++count;
  sum += value;
  return bucket;
}

void BucketCounts::merge(const BucketCounts& other) {
  if (other.count == 0) return;
  if (counts.size() < other.counts.size()) counts.resize(other.counts.size(), 0);
  for (size_t i = 0; i < other.counts.size(); ++i) counts[i] += other.counts[i];
  if (count == 0 || other.min < min) min = other.min;
  if (count == 0 || other.max > max) max = other.max;
  count += other.count;
  sum += other.sum;
}

void BucketCounts::clear() {
  std::fill(counts.begin(), counts.end(), 0);
  count = 0;
  sum = min = max = 0;
}

struct HttpMetrics::Impl {
  mutable std::mutex mu;
  std::string key_scratch;  // guarded by mu; keeps its capacity
  std::unordered_map<std::string, HttpSeries, ViewHash, std::equal_to<>> series;
  uint64_t overflowed = 0;
};

HttpMetrics::HttpMetrics(HttpMetricsOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->series.reserve(std::min<size_t>(options_.max_series, 1024));
}

HttpMetrics::~HttpMetrics() = default;

void HttpMetrics::on_routed_exchange(const Exchange& exchange, std::string_view route) {
  std::lock_guard lock(impl_->mu);
  auto make_key = [&](std::string_view r) {
    std::string& key = impl_->key_scratch;
    key.clear();
    key.append(reinterpret_cast<const char*>(&exchange.scope), sizeof exchange.scope);
    key.push_back(static_cast<char>(exchange.method));
    key.append(reinterpret_cast<const char*>(&exchange.status), sizeof exchange.status);
    key.push_back(static_cast<char>(exchange.outcome));
    key.push_back(static_cast<char>(exchange.grpc));
    key.append(reinterpret_cast<const char*>(&exchange.grpc_status), sizeof exchange.grpc_status);
    key.append(r);
  };
  make_key(route);
  auto it = impl_->series.find(std::string_view(impl_->key_scratch));
  if (it == impl_->series.end()) {
    // Past the cap, route "{overflow}" still keeps method and status apart: a few series.
    if (impl_->series.size() >= options_.max_series) {
      ++impl_->overflowed;
      make_key(kOverflowRoute);
      it = impl_->series.find(std::string_view(impl_->key_scratch));
      route = kOverflowRoute;
    }
    if (it == impl_->series.end()) {
      HttpSeries s;
      s.scope = exchange.scope;
      s.method = method_name(exchange.method);
      s.route = route;
      s.status = exchange.status;
      s.error_type = outcome_error_type(exchange.outcome);
      s.grpc = exchange.grpc;
      s.grpc_status = exchange.grpc_status;
      s.duration_s.counts.assign(options_.duration_buckets_s.size() + 1, 0);
      s.request_body_bytes.counts.assign(options_.size_buckets_bytes.size() + 1, 0);
      s.response_body_bytes.counts.assign(options_.size_buckets_bytes.size() + 1, 0);
      s.start_unix_ns = unix_nanos();
      it = impl_->series.emplace(impl_->key_scratch, std::move(s)).first;
    }
  } else if (it->second.route == kOverflowRoute) {
    ++impl_->overflowed;
  }
  HttpSeries& s = it->second;
  ++s.requests;
  if (exchange.response_headers_done == 0) return;  // no answer: no duration, no sizes
  const MonoNanos duration = exchange.response_done ? exchange.total_time() : exchange.latency();
  const double seconds = static_cast<double>(duration) / kNanosPerSecond;
  const size_t bucket = s.duration_s.record(options_.duration_buckets_s, seconds);
  offer_exemplar(s, bucket, exchange, seconds);
  s.request_body_bytes.record(options_.size_buckets_bytes,
                              static_cast<double>(exchange.request_body_bytes));
  s.response_body_bytes.record(options_.size_buckets_bytes,
                               static_cast<double>(exchange.response_body_bytes));
}

HttpMetricsSnapshot HttpMetrics::snapshot() const {
  HttpMetricsSnapshot snap;
  {
    std::lock_guard lock(impl_->mu);
    snap.series.reserve(impl_->series.size());
    for (const auto& [key, s] : impl_->series) snap.series.push_back(s);
    snap.overflowed_requests = impl_->overflowed;
  }
  std::sort(snap.series.begin(), snap.series.end(), [](const HttpSeries& a, const HttpSeries& b) {
    return std::tie(a.route, a.method, a.status, a.error_type, a.grpc, a.grpc_status, a.scope) <
           std::tie(b.route, b.method, b.status, b.error_type, b.grpc, b.grpc_status, b.scope);
  });
  return snap;
}

// Series keys: 4 bytes scope, 1 method, 2 status, 1 outcome, 1 gRPC, 2 gRPC status, then the
// route.
constexpr size_t kKeyPrefix = sizeof(uint32_t) + 1 + sizeof(uint16_t) + 1 + 1 + sizeof(int16_t);

void HttpMetrics::merge_from(const HttpMetrics& delta) {
  if (&delta == this) return;
  std::scoped_lock lock(impl_->mu, delta.impl_->mu);
  for (const auto& [key, from] : delta.impl_->series) {
    if (from.requests == 0) continue;
    auto it = impl_->series.find(std::string_view(key));
    if (it == impl_->series.end()) {
      std::string target = key;
      std::string_view route = from.route;
      if (impl_->series.size() >= options_.max_series) {
        target = key.substr(0, kKeyPrefix).append(kOverflowRoute);
        route = kOverflowRoute;
        impl_->overflowed += from.requests;
        it = impl_->series.find(std::string_view(target));
      }
      if (it == impl_->series.end()) {
        HttpSeries s = from;
        s.route = route;
        s.requests = 0;
        s.duration_s.clear();
        s.request_body_bytes.clear();
        s.response_body_bytes.clear();
        it = impl_->series.emplace(std::move(target), std::move(s)).first;
      }
    }
    HttpSeries& into = it->second;
    for (const Exemplar& f : from.duration_exemplars) {
      if (f.unix_ms == 0) continue;
      Exemplar& t = exemplar_slot(into.duration_exemplars, f.bucket);
      // The newer one, except that a traced exemplar is not given up for an untraced one.
      if ((f.trace || !t.trace) && f.unix_ms >= t.unix_ms) t = f;
    }
    into.requests += from.requests;
    into.duration_s.merge(from.duration_s);
    into.request_body_bytes.merge(from.request_body_bytes);
    into.response_body_bytes.merge(from.response_body_bytes);
    into.start_unix_ns = std::min(into.start_unix_ns, from.start_unix_ns);
  }
  impl_->overflowed += delta.impl_->overflowed;
}

void HttpMetrics::clear_counts() {
  std::lock_guard lock(impl_->mu);
  // As RouteStore::clear_counts: a series idle for a whole hand-over is given back.
  std::erase_if(impl_->series, [](const auto& entry) { return entry.second.requests == 0; });
  for (auto& [key, s] : impl_->series) {
    s.requests = 0;
    s.duration_exemplars.clear();  // keeps the capacity: no allocation per hand-over
    s.duration_s.clear();
    s.request_body_bytes.clear();
    s.response_body_bytes.clear();
  }
  impl_->overflowed = 0;
}

bool HttpMetrics::has_counts() const {
  std::lock_guard lock(impl_->mu);
  for (const auto& [key, s] : impl_->series) {
    if (s.requests != 0) return true;
  }
  return false;
}

size_t HttpMetrics::erase_scope(uint32_t scope) {
  std::lock_guard lock(impl_->mu);
  return std::erase_if(impl_->series,
                       [scope](const auto& entry) { return entry.second.scope == scope; });
}

size_t HttpMetrics::series_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->series.size();
}

}  // namespace netprof
