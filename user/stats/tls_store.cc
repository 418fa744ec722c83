#include "stats/tls_store.h"

#include <algorithm>

namespace netprof {
namespace {

constexpr double kQuantiles[] = {0.5, 0.9, 0.99};

void summarize(const LatencyHistogram& h, double (&out)[6]) {
  double q[3] = {};
  h.quantiles(kQuantiles, q);
  out[0] = h.min();
  out[1] = h.mean();
  out[2] = q[0];
  out[3] = q[1];
  out[4] = q[2];
  out[5] = h.max();
}

}  // namespace

TlsStats& TlsStore::entry(const TlsKey& key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second;
  if (entries_.size() >= max_entries_) {
    TlsKey overflow;
    overflow.server_name = "{overflow}";
    it = entries_.find(overflow);
    if (it != entries_.end()) return it->second;
    it = entries_.emplace(std::move(overflow), TlsStats{}).first;
  } else {
    it = entries_.emplace(key, TlsStats{}).first;
  }
  it->second.handshake_buckets.assign(tls_handshake_buckets_s().size() + 1, 0);
  return it->second;
}

void TlsStore::record(const TlsConnection& c) {
  TlsKey key{c.scope,
             c.port,
             std::string(c.server_name),
             std::string(c.alpn),
             c.version,
             std::string(c.alpn_offered)};
  TlsStats& s = entry(key);
  ++s.connections;
  s.bytes_client_to_server += c.bytes_client_to_server;
  s.bytes_server_to_client += c.bytes_server_to_client;
  if (c.failure != TlsFailure::kNone) {
    ++s.failures;
    ++s.failure_kinds[static_cast<size_t>(c.failure)];
  }
  if (c.handshake_done != 0) {
    ++s.handshakes;
    const double us = static_cast<double>(c.handshake_time()) / 1e3;
    s.handshake_us.record(us);
    const double seconds = us / 1e6;
    const auto& bounds = tls_handshake_buckets_s();
    const auto at = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
    ++s.handshake_buckets[static_cast<size_t>(at)];
    s.handshake_sum_s += seconds;
  }
  s.duration_us.record(static_cast<double>(c.duration()) / 1e3);
  has_counts_ = true;
}

void TlsStore::merge_from(const TlsStore& delta) {
  for (const auto& [key, d] : delta.entries_) {
    if (d.connections == 0) continue;
    TlsStats& s = entry(key);
    s.connections += d.connections;
    s.handshakes += d.handshakes;
    s.failures += d.failures;
    for (size_t i = 0; i < s.failure_kinds.size(); ++i) s.failure_kinds[i] += d.failure_kinds[i];
    s.bytes_client_to_server += d.bytes_client_to_server;
    s.bytes_server_to_client += d.bytes_server_to_client;
    s.handshake_us.merge(d.handshake_us);
    s.duration_us.merge(d.duration_us);
    for (size_t i = 0; i < s.handshake_buckets.size() && i < d.handshake_buckets.size(); ++i)
      s.handshake_buckets[i] += d.handshake_buckets[i];
    s.handshake_sum_s += d.handshake_sum_s;
    has_counts_ = true;
  }
}

void TlsStore::clear_counts() {
  for (auto& [key, s] : entries_) {
    s.connections = s.handshakes = s.failures = 0;
    s.failure_kinds.fill(0);
    s.bytes_client_to_server = s.bytes_server_to_client = 0;
    s.handshake_us.clear();
    s.duration_us.clear();
    std::fill(s.handshake_buckets.begin(), s.handshake_buckets.end(), 0);
    s.handshake_sum_s = 0;
  }
  has_counts_ = false;
}

std::vector<TlsSummary> TlsStore::snapshot() const {
  std::vector<TlsSummary> out;
  out.reserve(entries_.size());
  for (const auto& [key, s] : entries_) {
    if (s.connections == 0) continue;
    TlsSummary t;
    t.key = key;
    t.overflow = key.server_name == "{overflow}" && key.port == 0;
    t.connections = s.connections;
    t.handshakes = s.handshakes;
    t.failures = s.failures;
    t.failure_kinds = s.failure_kinds;
    t.bytes_client_to_server = s.bytes_client_to_server;
    t.bytes_server_to_client = s.bytes_server_to_client;
    t.handshake_samples = s.handshake_us.count();
    summarize(s.handshake_us, t.handshake_us);
    summarize(s.duration_us, t.duration_us);
    t.handshake_buckets = s.handshake_buckets;
    t.handshake_sum_s = s.handshake_sum_s;
    out.push_back(std::move(t));
  }
  return out;
}

size_t TlsStore::erase_scope(uint32_t scope) {
  return std::erase_if(entries_, [scope](const auto& e) {
    return e.first.scope == scope && e.first.server_name != "{overflow}";
  });
}

}  // namespace netprof
