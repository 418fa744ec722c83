// OTLP/HTTP JSON (ExportMetricsServiceRequest, protobuf JSON mapping: 64-bit integers as
// strings, enums as numbers) for the HTTP series: http.server.request.duration (s) and the
// request/response body sizes (By) as cumulative explicit-bucket histograms, attributes
// http.request.method, http.route, http.response.status_code and error.type.
// Duration points carry the series' exemplars (HttpSeries::duration_exemplars).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "export/http_metrics.h"

namespace netprof {

struct OtlpResource {
  std::vector<std::pair<std::string, std::string>> attributes;  // service.name, host.name, ...
};

std::string build_otlp_metrics(const HttpMetricsSnapshot& snapshot,
                               const HttpMetricsOptions& options, const OtlpResource& resource,
                               int64_t now_unix_ns);

// "http://host:4318" -> ".../v1/metrics", the OTLP/HTTP default path; a URL with a path is
// used as given (like OTEL_EXPORTER_OTLP_METRICS_ENDPOINT).
std::string otlp_metrics_url(const std::string& endpoint);

}  // namespace netprof
