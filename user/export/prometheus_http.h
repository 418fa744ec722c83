// The HTTP families of /metrics, named after OpenTelemetry's HTTP semantic conventions as
// the OTel Prometheus exporter would name them:
//   http_server_request_duration_seconds   histogram  request headers in -> last response byte
//   http_server_request_body_size_bytes    histogram  decoded request body
//   http_server_response_body_size_bytes   histogram  decoded response body
//   netprof_http_requests_total            counter    every exchange, answered or not
// Labels: http_request_method, http_route, http_response_status_code (absent when no
// response came) and error_type (only on exchanges that failed: connection_reset, ...).
// With a ScopeRegistry (node mode), series of a pod also carry k8s_pod_name, k8s_pod_uid
// and, when known, k8s_namespace_name.
#pragma once

#include "export/http_metrics.h"
#include "export/prometheus_text.h"
#include "stats/scope_registry.h"

namespace netprof {

void write_http_metrics(PrometheusWriter& writer, const HttpMetricsSnapshot& snapshot,
                        const HttpMetricsOptions& options, const ScopeRegistry* scopes = nullptr);

}  // namespace netprof
