#include "export/otlp_json.h"
#include "base/version.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "routes/grpc_route.h"

namespace netprof {
namespace {

using nlohmann::json;

json string_attribute(std::string_view key, std::string_view value) {
  return {{"key", key}, {"value", {{"stringValue", value}}}};
}

json attributes(const HttpSeries& s) {
  json a = json::array();
  a.push_back(string_attribute("http.request.method", s.method));
  a.push_back(string_attribute("http.route", s.route));
  if (s.status != 0) {
    a.push_back({{"key", "http.response.status_code"},
                 {"value", {{"intValue", std::to_string(s.status)}}}});
  }
  if (!s.error_type.empty()) a.push_back(string_attribute("error.type", s.error_type));
  return a;
}

// OpenTelemetry RPC conventions (rpc.server.call.duration) for a gRPC call's series.
json rpc_attributes(const HttpSeries& s) {
  std::string_view service, method;
  grpc_split_method(s.route, service, method);
  if (service.empty()) service = s.route;  // "{overflow}", or a path that is no method
  json a = json::array();
  a.push_back(string_attribute("rpc.system", "grpc"));
  a.push_back(string_attribute("rpc.service", service));
  a.push_back(string_attribute("rpc.method", method));
  if (s.grpc_status >= 0) {
    a.push_back({{"key", "rpc.grpc.status_code"},
                 {"value", {{"intValue", std::to_string(s.grpc_status)}}}});
  }
  if (!s.error_type.empty()) a.push_back(string_attribute("error.type", s.error_type));
  return a;
}

bool is_hex(std::string_view id) {
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// OTLP's Exemplar (metrics.proto). A trace id of 32 or 16 hex digits (traceparent, B3, or an
// X-Request-Id of that form such as nginx's $request_id) goes to traceId: lower-case hex, as
// OTLP/JSON encodes ids (not base64), a 64-bit B3 id zero-padded on the left to 128 bits. No
// spanId: it is optional ("may be missing") and the relay has no span of this request. Other ids
// go to filteredAttributes under the names a reader knows from /metrics: "trace_id" (the
// OpenMetrics exemplar label) for a trace id of another form, "netprof.request_id" for netprof's
// "<connection>-<sequence>" (shown by /slow and tap), namespaced as OpenTelemetry asks of
// attributes it does not define.
json exemplar(const Exemplar& x) {
  json e = {{"timeUnixNano", std::to_string(x.unix_ms * 1'000'000)}, {"asDouble", x.value}};
  const std::string_view id = x.id_view();
  if (x.trace && (id.size() == 32 || id.size() == 16) && is_hex(id)) {
    std::string hex(32 - id.size(), '0');
    for (char c : id) hex += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    e["traceId"] = std::move(hex);
  } else {
    e["filteredAttributes"] =
        json::array({string_attribute(x.trace ? "trace_id" : "netprof.request_id", id)});
  }
  return e;
}

json histogram_point(const HttpSeries& s, const BucketCounts& b, const std::vector<double>& bounds,
                     int64_t now_ns, bool rpc, bool with_exemplars) {
  json counts = json::array();
  for (uint64_t c : b.counts) counts.push_back(std::to_string(c));
  json point = {{"attributes", rpc ? rpc_attributes(s) : attributes(s)},
                {"startTimeUnixNano", std::to_string(s.start_unix_ns)},
                {"timeUnixNano", std::to_string(now_ns)},
                {"count", std::to_string(b.count)},
                {"sum", b.sum},
                {"min", b.min},
                {"max", b.max},
                {"bucketCounts", std::move(counts)},
                {"explicitBounds", bounds}};
  if (!with_exemplars) return point;
  json exemplars = json::array();
  for (const Exemplar& x : s.duration_exemplars) {
    if (x.unix_ms != 0 && x.id_len != 0) exemplars.push_back(exemplar(x));
  }
  if (!exemplars.empty()) point["exemplars"] = std::move(exemplars);
  return point;
}

constexpr int kCumulative = 2;  // AGGREGATION_TEMPORALITY_CUMULATIVE

}  // namespace

std::string build_otlp_metrics(const HttpMetricsSnapshot& snapshot,
                               const HttpMetricsOptions& options, const OtlpResource& resource,
                               int64_t now_unix_ns) {
  struct Family {
    const char* name;
    const char* description;
    const char* unit;
    BucketCounts HttpSeries::*field;
    const std::vector<double>* bounds;
    bool rpc;        // gRPC series only, with the RPC attributes
    bool exemplars;  // the duration histograms: HttpSeries::duration_exemplars
  };
  const Family families[] = {
      {"http.server.request.duration", "Duration of HTTP server requests.", "s",
       &HttpSeries::duration_s, &options.duration_buckets_s, false, true},
      {"http.server.request.body.size", "Size of HTTP server request bodies.", "By",
       &HttpSeries::request_body_bytes, &options.size_buckets_bytes, false, false},
      {"http.server.response.body.size", "Size of HTTP server response bodies.", "By",
       &HttpSeries::response_body_bytes, &options.size_buckets_bytes, false, false},
      {"rpc.server.call.duration", "Duration of gRPC server calls.", "s",
       &HttpSeries::duration_s, &options.duration_buckets_s, true, true},
  };
  json metrics = json::array();
  for (const Family& f : families) {
    json points = json::array();
    for (const HttpSeries& s : snapshot.series) {
      const BucketCounts& b = s.*f.field;
      if (f.rpc && !s.grpc) continue;
      if (b.count > 0) {
        points.push_back(histogram_point(s, b, *f.bounds, now_unix_ns, f.rpc, f.exemplars));
      }
    }
    if (f.rpc && points.empty()) continue;  // no gRPC calls: no RPC metric
    metrics.push_back({{"name", f.name},
                       {"description", f.description},
                       {"unit", f.unit},
                       {"histogram",
                        {{"aggregationTemporality", kCumulative}, {"dataPoints", std::move(points)}}}});
  }
  json resource_attributes = json::array();
  for (const auto& [k, v] : resource.attributes) resource_attributes.push_back(string_attribute(k, v));
  const json request = {
      {"resourceMetrics",
       json::array({{{"resource", {{"attributes", std::move(resource_attributes)}}},
                     {"scopeMetrics",
                      json::array({{{"scope", {{"name", "netprof"}, {"version", kVersion}}},
                                    {"metrics", std::move(metrics)}}})}}})}};
  return request.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string otlp_metrics_url(const std::string& endpoint) {
  std::string_view rest(endpoint);
  if (rest.substr(0, 7) == "http://") rest.remove_prefix(7);
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || rest.substr(slash) == "/") {
    std::string base = endpoint;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base + "/v1/metrics";
  }
  return endpoint;
}

}  // namespace netprof
