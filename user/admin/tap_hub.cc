#include "admin/tap_hub.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "export/http_metrics.h"  // method_name
#include "routes/secrets.h"     // without_userinfo
#include "tls/connection.h"

namespace netprof {
namespace {

uint16_t copy_truncated(std::string_view from, char* to, size_t capacity) {
  const size_t n = std::min(from.size(), capacity);
  if (n != 0) std::memcpy(to, from.data(), n);  // an empty view may have no data at all
  return static_cast<uint16_t>(n);
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::string TapFilter::parse_status(std::string_view text, std::vector<std::string>& out) {
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    const bool exact = item.size() == 3 && is_digit(item[0]) && is_digit(item[1]) && is_digit(item[2]);
    const bool klass = item.size() == 3 && item[0] >= '1' && item[0] <= '5' &&
                       (item[1] == 'x' || item[1] == 'X') && (item[2] == 'x' || item[2] == 'X');
    if (!exact && !klass && item != "error") {
      return "status filter '" + std::string(item) + "': use a code (404), a class (5xx) or 'error'";
    }
    out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return {};
}

bool TapFilter::matches(const TapRecord& r) const {
  if (r.tls) {
    if (!route.empty() || !method.empty()) return false;
    if (status.empty()) return true;
    return r.tls_failure != 0 && std::find(status.begin(), status.end(), "error") != status.end();
  }
  if (!route.empty()) {
    const std::string_view have = r.route_view();
    if (route.back() == '*') {
      if (have.substr(0, route.size() - 1) != std::string_view(route).substr(0, route.size() - 1)) return false;
    } else if (have != route) {
      return false;
    }
  }
  if (!method.empty() && method_name(r.method) != method) return false;
  if (status.empty()) return true;
  const std::string code = r.status ? std::to_string(r.status) : std::string();
  for (const std::string& want : status) {
    if (want == "error") {
      if (r.outcome != ExchangeOutcome::kCompleted || r.status >= 500) return true;
    } else if (!code.empty() && (want == code || ((want[1] == 'x' || want[1] == 'X') && want[0] == code[0]))) {
      return true;
    }
  }
  return false;
}

TapHub::TapHub(size_t ring_size, bool keep_query, std::function<int64_t(MonoNanos)> epoch_ms)
    : keep_query_(keep_query), epoch_ms_(std::move(epoch_ms)),
      ring_size_(std::max<size_t>(ring_size, 16)) {}

TapHub::~TapHub() = default;

size_t TapHub::ring_bytes() const {
  std::lock_guard lock(mu_);
  return ring_.capacity() * sizeof(TapRecord);
}

void TapHub::on_routed_exchange(const Exchange& e, std::string_view route) {
  if (subscribers_.load(std::memory_order_relaxed) == 0) return;
  const int64_t started_ms = epoch_ms_(e.request_first_byte);
  std::lock_guard lock(mu_);
  if (ring_.empty()) return;  // (a subscriber allocates it before counting itself)
  TapRecord& r = ring_[next_seq_ % ring_.size()];
  r.seq = next_seq_++;
  r.started_ms = started_ms;
  r.scope = e.scope;
  r.method = e.method;
  r.status = e.status;
  r.outcome = e.outcome;
  r.path_truncated = e.path_truncated;
  r.latency_ns = e.latency();
  r.total_ns = e.total_time();
  r.request_bytes = e.request_bytes;
  r.response_bytes = e.response_bytes;
  r.request_body_bytes = e.request_body_bytes;
  r.response_body_bytes = e.response_body_bytes;
  r.route_len = copy_truncated(route, r.route, TapRecord::kMaxRoute);
  r.path_len = copy_truncated(e.path, r.path, TapRecord::kMaxPath);
  r.connection_id = e.connection_id;
  r.sequence = e.sequence;
  r.trace_len = static_cast<uint8_t>(copy_truncated(e.trace_id, r.trace_id, kMaxTraceIdBytes));
  r.tls = false;
  published_.fetch_add(1, std::memory_order_relaxed);
}

void TapHub::on_tls_connection(const TlsConnection& c) {
  if (subscribers_.load(std::memory_order_relaxed) == 0) return;
  const int64_t started_ms = epoch_ms_(c.first_byte);
  std::lock_guard lock(mu_);
  if (ring_.empty()) return;
  TapRecord& r = ring_[next_seq_ % ring_.size()];
  r.seq = next_seq_++;
  r.started_ms = started_ms;
  r.scope = c.scope;
  r.method = 0;
  r.status = 0;
  r.outcome = ExchangeOutcome::kCompleted;
  r.path_truncated = false;
  r.latency_ns = c.handshake_time();
  r.total_ns = c.duration();
  r.request_bytes = c.bytes_client_to_server;
  r.response_bytes = c.bytes_server_to_client;
  r.request_body_bytes = r.response_body_bytes = 0;
  r.route_len = copy_truncated(c.server_name, r.route, TapRecord::kMaxRoute);
  r.path_len = copy_truncated(c.alpn_offered, r.path, TapRecord::kMaxPath);
  r.tls = true;
  r.tls_port = c.port;
  r.tls_version = c.version;
  r.tls_failure = static_cast<uint8_t>(c.failure);
  r.alpn_len = static_cast<uint8_t>(copy_truncated(c.alpn, r.alpn, TapRecord::kMaxAlpn));
  r.connection_id = 0;
  r.sequence = 0;
  r.trace_len = 0;
  published_.fetch_add(1, std::memory_order_relaxed);
}

std::unique_ptr<TapHub::Subscription> TapHub::subscribe() {
  return std::make_unique<Subscription>(*this);
}

TapStats TapHub::stats() const {
  return {subscribers_.load(), published_.load(), dropped_.load()};
}

std::string TapHub::format(const TapRecord& r, bool raw_path) const {
  if (r.tls) {
    nlohmann::ordered_json j = {
        {"ts_ms", r.started_ms},
        {"scope", r.scope},
        {"tls", true},
        {"server_name", r.route_view()},
        {"port", r.tls_port},
        {"version", tls_version_name(r.tls_version)},
        {"alpn", std::string_view(r.alpn, r.alpn_len)},
        {"alpn_offered", r.path_view()},
        {"handshake_ms", round3(static_cast<double>(r.latency_ns) / 1e6)},
        {"duration_ms", round3(static_cast<double>(r.total_ns) / 1e6)},
        {"bytes_client_to_server", r.request_bytes},
        {"bytes_server_to_client", r.response_bytes},
    };
    if (r.tls_failure != 0) j["error"] = tls_failure_name(static_cast<TlsFailure>(r.tls_failure));
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  }
  nlohmann::ordered_json j = {
      {"ts_ms", r.started_ms},
      {"scope", r.scope},
      {"method", method_name(r.method)},
      {"route", r.route_view()},
  };
  if (r.connection_id != 0) j["request_id"] = request_id_text(r.connection_id, r.sequence);
  if (r.trace_len != 0) j["trace_id"] = r.trace_view();
  if (raw_path) {
    std::string_view path = r.path_view();
    if (!keep_query_) path = path.substr(0, path.find('?'));
    j["path"] = without_userinfo(path);  // "http://user:password@host/": never the password
    if (r.path_truncated || r.path_len == TapRecord::kMaxPath) j["path_truncated"] = true;
  }
  j["status"] = r.status;
  if (r.outcome != ExchangeOutcome::kCompleted) j["error"] = outcome_error_type(r.outcome);
  j["latency_ms"] = round3(static_cast<double>(r.latency_ns) / 1e6);
  j["total_ms"] = round3(static_cast<double>(r.total_ns) / 1e6);
  j["request_bytes"] = r.request_bytes;
  j["response_bytes"] = r.response_bytes;
  j["request_body_bytes"] = r.request_body_bytes;
  j["response_body_bytes"] = r.response_body_bytes;
  // Invalid UTF-8 in a path must not end the stream: replace it.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

TapHub::Subscription::Subscription(TapHub& hub) : hub_(hub) {
  std::lock_guard lock(hub_.mu_);
  // The ring (~1 MiB at the default size) is made for the first subscriber: most netprofs are
  // never tapped. Kept from then on, so a worker that saw a subscriber always finds it.
  if (hub_.ring_.empty()) hub_.ring_.resize(hub_.ring_size_);
  next_ = hub_.next_seq_;  // only what happens from now on
  hub_.subscribers_.fetch_add(1);
}

TapHub::Subscription::~Subscription() { hub_.subscribers_.fetch_sub(1); }

uint64_t TapHub::Subscription::read(std::vector<TapRecord>& out, size_t max) {
  out.clear();
  std::lock_guard lock(hub_.mu_);
  uint64_t skipped = 0;
  const uint64_t oldest = hub_.next_seq_ > hub_.ring_.size() ? hub_.next_seq_ - hub_.ring_.size() : 1;
  if (next_ < oldest) {
    skipped = oldest - next_;
    next_ = oldest;
  }
  while (next_ < hub_.next_seq_ && out.size() < max) {
    out.push_back(hub_.ring_[next_ % hub_.ring_.size()]);
    ++next_;
  }
  return skipped;
}

}  // namespace netprof
