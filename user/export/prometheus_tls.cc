#include "export/prometheus_tls.h"

#include <map>
#include <optional>
#include <string>
#include <tuple>

namespace netprof {
namespace {

// What one series shows; entries with the same labels are added together.
struct SeriesKey {
  std::string pod_name, pod_uid, pod_namespace;
  std::string server_name, port, version, alpn;
  auto operator<=>(const SeriesKey&) const = default;
};

struct SeriesCounts {
  uint64_t connections = 0;
  std::array<uint64_t, 5> failure_kinds{};
  std::vector<uint64_t> buckets;
  uint64_t handshakes = 0;
  double sum_s = 0;
  uint64_t bytes_c2s = 0, bytes_s2c = 0;
};

std::vector<Label> labels_of(const SeriesKey& k) {
  std::vector<Label> labels = {{"server_name", k.server_name},
                               {"server_port", k.port},
                               {"tls_protocol_version", k.version},
                               {"tls_alpn", k.alpn}};
  if (!k.pod_uid.empty()) {
    labels.emplace_back("k8s_pod_name", k.pod_name);
    labels.emplace_back("k8s_pod_uid", k.pod_uid);
    if (!k.pod_namespace.empty()) labels.emplace_back("k8s_namespace_name", k.pod_namespace);
  }
  return labels;
}

}  // namespace

void write_tls_metrics(PrometheusWriter& w, const std::vector<TlsSummary>& tls,
                       const ScopeRegistry* scopes) {
  if (tls.empty()) return;  // no TLS seen: /metrics stays as it was
  std::map<SeriesKey, SeriesCounts> series;
  for (const TlsSummary& t : tls) {
    SeriesKey key;
    if (scopes != nullptr) {
      if (std::optional<ScopeInfo> pod = scopes->find(t.key.scope)) {
        key.pod_name = pod->pod_name;
        key.pod_uid = pod->pod_uid;
        key.pod_namespace = pod->pod_namespace;
      }
    }
    key.server_name = t.key.server_name;
    key.port = std::to_string(t.key.port);
    key.version = std::string(tls_version_name(t.key.version));
    key.alpn = t.key.alpn;
    SeriesCounts& s = series[std::move(key)];
    s.connections += t.connections;
    for (size_t i = 0; i < s.failure_kinds.size(); ++i) s.failure_kinds[i] += t.failure_kinds[i];
    if (s.buckets.size() < t.handshake_buckets.size()) s.buckets.resize(t.handshake_buckets.size());
    for (size_t i = 0; i < t.handshake_buckets.size(); ++i) s.buckets[i] += t.handshake_buckets[i];
    s.handshakes += t.handshakes;
    s.sum_s += t.handshake_sum_s;
    s.bytes_c2s += t.bytes_client_to_server;
    s.bytes_s2c += t.bytes_server_to_client;
  }

  w.family("netprof_tls_connections_total", "counter",
           "TLS connections relayed (counted at close), by server name (SNI), port, negotiated "
           "version and ALPN. Never decrypted: read from the handshake's clear-text hellos.");
  for (const auto& [key, s] : series) {
    const std::vector<Label> labels = labels_of(key);
    w.sample("netprof_tls_connections_total", labels, static_cast<double>(s.connections));
  }
  w.family("netprof_tls_handshake_failures_total", "counter",
           "TLS handshakes that did not complete: error_type=alert (an alert record), "
           "connection_reset, connection_closed, upstream_unreachable.");
  for (const auto& [key, s] : series) {
    for (size_t i = 1; i < s.failure_kinds.size(); ++i) {
      if (s.failure_kinds[i] == 0) continue;
      std::vector<Label> labels = labels_of(key);
      labels.emplace_back("error_type", tls_failure_name(static_cast<TlsFailure>(i)));
      w.sample("netprof_tls_handshake_failures_total", labels,
               static_cast<double>(s.failure_kinds[i]));
    }
  }
  w.family("netprof_tls_handshake_duration_seconds", "histogram",
           "TLS handshake time: the ClientHello's first byte to the server's Finished (TLS 1.2 "
           "and older) or to the client's first encrypted record, its Finished (TLS 1.3).");
  for (const auto& [key, s] : series) {
    if (s.buckets.empty()) continue;
    const std::vector<Label> labels = labels_of(key);
    w.histogram("netprof_tls_handshake_duration_seconds", labels, tls_handshake_buckets_s(),
                s.buckets, s.sum_s);
  }
  w.family("netprof_tls_bytes_total", "counter", "Bytes of TLS connections, by direction.");
  for (const auto& [key, s] : series) {
    std::vector<Label> labels = labels_of(key);
    labels.emplace_back("direction", "client_to_server");
    w.sample("netprof_tls_bytes_total", labels, static_cast<double>(s.bytes_c2s));
    labels.back().second = "server_to_client";
    w.sample("netprof_tls_bytes_total", labels, static_cast<double>(s.bytes_s2c));
  }
}

}  // namespace netprof
