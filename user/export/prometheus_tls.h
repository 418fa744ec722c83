// The TLS families of /metrics (TLS connections seen by the relay, never decrypted):
//   netprof_tls_connections_total            counter    connections, by how they were seen
//   netprof_tls_handshake_failures_total     counter    handshakes that failed, by error_type
//   netprof_tls_handshake_duration_seconds   histogram  ClientHello -> end of the handshake
//   netprof_tls_bytes_total                  counter    bytes relayed, by direction
// Labels: server_name (SNI, cleaned: "" without SNI, "{invalid}" for a name that is not one,
// "{overflow}" past the store's entry cap, so the cardinality is bounded), server_port,
// tls_protocol_version ("TLS1.3", ..., "unknown"), tls_alpn (the server's ALPN choice, "" when
// none); in node mode also the pod's k8s_* labels. Entries that differ only in what the labels do
// not show (the scope in proxy mode) are added together, so every series is unique.
#pragma once

#include <vector>

#include "export/prometheus_text.h"
#include "stats/scope_registry.h"
#include "stats/tls_store.h"

namespace netprof {

void write_tls_metrics(PrometheusWriter& writer, const std::vector<TlsSummary>& tls,
                       const ScopeRegistry* scopes = nullptr);

}  // namespace netprof
