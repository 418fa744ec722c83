#include "report/json_report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "stats/route_store.h"

namespace netprof {
namespace {

constexpr std::array<double, 3> kPercentiles = {0.50, 0.90, 0.99};

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

// min, mean, p50, p90, p99, max of a microsecond histogram, in milliseconds.
struct DurationSummary {
  double min = 0, mean = 0, max = 0;
  std::array<double, kPercentiles.size()> p{};

  explicit DurationSummary(const LatencyHistogram& h)
      : min(h.min() / 1e3), mean(h.mean() / 1e3), max(h.max() / 1e3) {
    h.quantiles(kPercentiles, p);
    for (double& v : p) v /= 1e3;
  }

  nlohmann::json to_json() const {
    return {{"min", round3(min)}, {"mean", round3(mean)}, {"p50", round3(p[0])},
            {"p90", round3(p[1])}, {"p99", round3(p[2])}, {"max", round3(max)}};
  }
};

// What the report needs of one route, copied under the store's lock.
struct RouteRow {
  uint32_t scope;
  std::string method, route;
  bool file, overflow, truncated;
  uint64_t count, errors;
  std::vector<std::pair<uint16_t, uint64_t>> status;
  uint64_t latency_samples;
  DurationSummary latency, total;
  uint64_t request_bytes, response_bytes, request_body_bytes, response_body_bytes;
  int64_t first_seen_ms;
  LastSample last;

  explicit RouteRow(const RouteStats& s)
      : scope(s.scope), method(s.method), route(s.route), file(s.file), overflow(s.overflow),
        truncated(s.truncated), count(s.count), errors(s.errors),
        status(s.status.begin(), s.status.end()), latency_samples(s.latency.count()),
        latency(s.latency), total(s.total_time), request_bytes(s.request_bytes),
        response_bytes(s.response_bytes), request_body_bytes(s.request_body_bytes),
        response_body_bytes(s.response_body_bytes), first_seen_ms(s.first_seen_ms),
        last(s.last) {}

  nlohmann::json to_json() const {
    nlohmann::json statuses = nlohmann::json::object();
    for (const auto& [code, n] : status) statuses[std::to_string(code)] = n;
    nlohmann::json j = {
        {"scope", scope},
        {"method", method},
        {"route", route},
        {"file", file},
        {"overflow", overflow},
        {"count", count},
        {"errors", errors},
        {"status", std::move(statuses)},
        {"latency_ms", latency.to_json()},
        {"latency_samples", latency_samples},  // exchanges that got response headers
        {"total_ms", total.to_json()},
        {"request_bytes", request_bytes},
        {"response_bytes", response_bytes},
        {"request_body_bytes", request_body_bytes},
        {"response_body_bytes", response_body_bytes},
        {"first_seen_ms", first_seen_ms},
        {"last",
         {{"started_ms", last.started_ms},
          {"time_ms", round3(last.time_ms)},
          {"status", last.status},
          {"state", last.state}}},
    };
    if (truncated) j["truncated"] = true;
    return j;
  }
};

bool report_order(const RouteRow& a, const RouteRow& b) {
  if (a.count != b.count) return a.count > b.count;
  return std::tie(a.route, a.method, a.scope) < std::tie(b.route, b.method, b.scope);
}

}  // namespace

nlohmann::json build_report(const RouteStore& store, int64_t generated_at_ms, double uptime_s) {
  std::vector<RouteRow> rows;
  rows.reserve(store.size());
  store.for_each([&rows](const RouteStats& stats) { rows.emplace_back(stats); });
  std::sort(rows.begin(), rows.end(), report_order);

  nlohmann::json routes = nlohmann::json::array();
  for (const RouteRow& row : rows) routes.push_back(row.to_json());

  const ConnectionCounters& c = store.connections();
  auto load = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  return {
      {"netprof", kReportVersion},
      {"generated_at_ms", generated_at_ms},
      {"uptime_s", round3(uptime_s)},
      {"routes", std::move(routes)},
      {"overflowed_requests", store.overflowed_requests()},
      {"connections",
       {{"accepted", load(c.accepted)},
        {"active", load(c.active)},
        {"unparsed", load(c.unparsed)},
        {"ambiguous_framing", load(c.ambiguous_framing)},
        {"upstream_failed", load(c.upstream_failed)},
        {"rejected", load(c.rejected)},
        {"bytes_client_to_server", load(c.bytes_client_to_server)},
        {"bytes_server_to_client", load(c.bytes_server_to_client)}}},
  };
}

}  // namespace netprof
