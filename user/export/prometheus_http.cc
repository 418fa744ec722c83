#include "export/prometheus_http.h"

#include <optional>
#include <string>
#include <vector>

#include "routes/grpc_route.h"

namespace netprof {
namespace {

// The label set of one series; owns the texts the labels point into.
struct SeriesLabels {
  std::string status;
  std::optional<ScopeInfo> pod;
  std::vector<Label> labels;

  // The labels point into `pod` and `status`: the vector of these is reserved, never moved.
  SeriesLabels(const HttpSeries& s, std::optional<ScopeInfo> scope_pod)
      : pod(std::move(scope_pod)) {
    if (s.status != 0) status = std::to_string(s.status);
    labels.emplace_back("http_request_method", s.method);
    labels.emplace_back("http_route", s.route);
    if (!status.empty()) labels.emplace_back("http_response_status_code", status);
    if (!s.error_type.empty()) labels.emplace_back("error_type", s.error_type);
    if (pod) {
      labels.emplace_back("k8s_pod_name", pod->pod_name);
      labels.emplace_back("k8s_pod_uid", pod->pod_uid);
      if (!pod->pod_namespace.empty())
        labels.emplace_back("k8s_namespace_name", pod->pod_namespace);
    }
  }
};

// OpenTelemetry RPC conventions for a gRPC series: rpc.system, rpc.service, rpc.method,
// rpc.grpc.status_code (absent when the call ended without a status: see error_type), and the
// pod labels of its HTTP series. The labels point into the object: it is never moved.
struct RpcLabels {
  std::string code;
  std::vector<Label> labels;

  RpcLabels(const HttpSeries& s, const SeriesLabels& http) {
    labels.reserve(8);
    std::string_view service, method;
    grpc_split_method(s.route, service, method);
    if (service.empty()) service = s.route;  // "{overflow}", or a path that is no method
    if (s.grpc_status >= 0) code = std::to_string(s.grpc_status);
    labels.emplace_back("rpc_system", "grpc");
    labels.emplace_back("rpc_service", service);
    labels.emplace_back("rpc_method", method);
    if (!code.empty()) labels.emplace_back("rpc_grpc_status_code", code);
    if (!s.error_type.empty()) labels.emplace_back("error_type", s.error_type);
    for (const Label& l : http.labels) {
      if (l.first.starts_with("k8s_")) labels.push_back(l);
    }
  }
};

}  // namespace

void write_http_metrics(PrometheusWriter& w, const HttpMetricsSnapshot& snapshot,
                        const HttpMetricsOptions& options, const ScopeRegistry* scopes) {
  std::vector<SeriesLabels> labels;
  labels.reserve(snapshot.series.size());
  for (const HttpSeries& s : snapshot.series)
    labels.emplace_back(s, scopes != nullptr ? scopes->find(s.scope) : std::nullopt);

  struct Histogram {
    const char* name;
    const char* help;
    BucketCounts HttpSeries::*field;
    const std::vector<double>* bounds;
    std::vector<Exemplar> HttpSeries::*exemplars;  // null: none
  };
  const Histogram histograms[] = {
      {"http_server_request_duration_seconds",
       "Duration of HTTP server requests: request headers received to last response byte.",
       &HttpSeries::duration_s, &options.duration_buckets_s, &HttpSeries::duration_exemplars},
      {"http_server_request_body_size_bytes", "Size of HTTP server request bodies (decoded).",
       &HttpSeries::request_body_bytes, &options.size_buckets_bytes, nullptr},
      {"http_server_response_body_size_bytes", "Size of HTTP server response bodies (decoded).",
       &HttpSeries::response_body_bytes, &options.size_buckets_bytes, nullptr},
  };
  for (const Histogram& h : histograms) {
    w.family(h.name, "histogram", h.help);
    for (size_t i = 0; i < snapshot.series.size(); ++i) {
      const BucketCounts& counts = snapshot.series[i].*h.field;
      if (counts.count == 0) continue;  // exchanges without a response have no duration
      std::span<const Exemplar> exemplars;
      if (h.exemplars != nullptr) exemplars = snapshot.series[i].*h.exemplars;
      w.histogram(h.name, labels[i].labels, *h.bounds, counts.counts, counts.sum, exemplars);
    }
  }
  // gRPC calls also get the RPC histogram. They stay in the HTTP families too: they are HTTP/2
  // requests, and a dashboard on http_* should not lose them.
  bool rpc_family = false;
  for (size_t i = 0; i < snapshot.series.size(); ++i) {
    const HttpSeries& s = snapshot.series[i];
    if (!s.grpc || s.duration_s.count == 0) continue;
    if (!rpc_family) {
      w.family("rpc_server_call_duration_seconds", "histogram",
               "Duration of gRPC server calls: request headers received to the end of the "
               "response.");
      rpc_family = true;
    }
    const RpcLabels rpc(s, labels[i]);
    w.histogram("rpc_server_call_duration_seconds", rpc.labels, options.duration_buckets_s,
                s.duration_s.counts, s.duration_s.sum, s.duration_exemplars);
  }
  w.family("netprof_http_requests_total", "counter",
           "HTTP exchanges seen, including those that got no response (see error_type).");
  for (size_t i = 0; i < snapshot.series.size(); ++i) {
    w.sample("netprof_http_requests_total", labels[i].labels,
             static_cast<double>(snapshot.series[i].requests));
  }
}

}  // namespace netprof
