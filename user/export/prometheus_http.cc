#include "export/prometheus_http.h"

#include <optional>
#include <string>
#include <vector>

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
  };
  const Histogram histograms[] = {
      {"http_server_request_duration_seconds",
       "Duration of HTTP server requests: request headers received to last response byte.",
       &HttpSeries::duration_s, &options.duration_buckets_s},
      {"http_server_request_body_size_bytes", "Size of HTTP server request bodies (decoded).",
       &HttpSeries::request_body_bytes, &options.size_buckets_bytes},
      {"http_server_response_body_size_bytes", "Size of HTTP server response bodies (decoded).",
       &HttpSeries::response_body_bytes, &options.size_buckets_bytes},
  };
  for (const Histogram& h : histograms) {
    w.family(h.name, "histogram", h.help);
    for (size_t i = 0; i < snapshot.series.size(); ++i) {
      const BucketCounts& counts = snapshot.series[i].*h.field;
      if (counts.count == 0) continue;  // exchanges without a response have no duration
      w.histogram(h.name, labels[i].labels, *h.bounds, counts.counts, counts.sum);
    }
  }
  w.family("netprof_http_requests_total", "counter",
           "HTTP exchanges seen, including those that got no response (see error_type).");
  for (size_t i = 0; i < snapshot.series.size(); ++i) {
    w.sample("netprof_http_requests_total", labels[i].labels,
             static_cast<double>(snapshot.series[i].requests));
  }
}

}  // namespace netprof
