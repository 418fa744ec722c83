#include "report/json_report.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "report/flight_json.h"
#include "report/pod_grouping.h"
#include "stats/route_store.h"

namespace netprof {
namespace {

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

// min, mean, p50, p90, p99, max in milliseconds, rounded to 3 decimals.
nlohmann::json duration_json(const DurationSummary& d) {
  auto ms = [](double us) { return round3(us / 1e3); };
  return {{"min", ms(d.min)}, {"mean", ms(d.mean)}, {"p50", ms(d.p50)},
          {"p90", ms(d.p90)}, {"p99", ms(d.p99)},   {"max", ms(d.max)}};
}

nlohmann::json route_json(const RouteSummary& r, bool with_flight) {
  nlohmann::json statuses = nlohmann::json::object();
  for (const auto& [code, n] : r.status) statuses[std::to_string(code)] = n;
  nlohmann::json j = {
      {"scope", r.scope},
      {"method", r.method},
      {"route", r.route},
      {"file", r.file},
      {"overflow", r.overflow},
      {"count", r.count},
      {"errors", r.errors},
      {"status", std::move(statuses)},
      {"latency_ms", duration_json(r.latency)},
      {"latency_samples", r.latency.samples},  // exchanges that got response headers
      {"total_ms", duration_json(r.total_time)},
      {"request_bytes", r.request_bytes},
      {"response_bytes", r.response_bytes},
      {"request_body_bytes", r.request_body_bytes},
      {"response_body_bytes", r.response_body_bytes},
      {"first_seen_ms", r.first_seen_ms},
      {"last",
       {{"started_ms", r.last.started_ms},
        {"time_ms", round3(r.last.time_ms)},
        {"status", r.last.status},
        {"state", r.last.state}}},
  };
  if (r.truncated) j["truncated"] = true;
  if (r.protocol == WireProtocol::kHttp2) j["protocol"] = "h2";
  if (with_flight && r.flight && !r.flight->empty()) j["slow"] = flight_json(*r.flight);
  if (r.grpc) {
    nlohmann::json codes = nlohmann::json::object();
    for (const auto& [code, n] : r.grpc_status) codes[std::to_string(code)] = n;
    j["grpc_status"] = std::move(codes);
  }
  return j;
}

nlohmann::json micros_json(const double (&us)[6]) {
  auto ms = [](double v) { return round3(v / 1e3); };
  return {{"min", ms(us[0])}, {"mean", ms(us[1])}, {"p50", ms(us[2])},
          {"p90", ms(us[3])}, {"p99", ms(us[4])},  {"max", ms(us[5])}};
}

nlohmann::json tls_json(const TlsSummary& t) {
  nlohmann::json kinds = nlohmann::json::object();
  for (size_t i = 1; i < t.failure_kinds.size(); ++i) {
    if (t.failure_kinds[i] != 0)
      kinds[std::string(tls_failure_name(static_cast<TlsFailure>(i)))] = t.failure_kinds[i];
  }
  nlohmann::json j = {
      {"scope", t.key.scope},
      {"server_name", t.key.server_name},
      {"port", t.key.port},
      {"alpn", t.key.alpn},
      {"alpn_offered", t.key.alpn_offered},
      {"version", std::string(tls_version_name(t.key.version))},
      {"connections", t.connections},
      {"handshakes", t.handshakes},  // connections whose handshake was seen to complete
      {"handshake_ms", micros_json(t.handshake_us)},
      {"duration_ms", micros_json(t.duration_us)},
      {"bytes_client_to_server", t.bytes_client_to_server},
      {"bytes_server_to_client", t.bytes_server_to_client},
      {"failures", t.failures},
      {"failure_kinds", std::move(kinds)},
  };
  if (t.overflow) j["overflow"] = true;
  return j;
}

bool report_order(const RouteSummary* a_ptr, const RouteSummary* b_ptr) {
  const RouteSummary& a = *a_ptr;
  const RouteSummary& b = *b_ptr;
  if (a.count != b.count) return a.count > b.count;
  return std::tie(a.route, a.method, a.scope, a.protocol, a.grpc) <
         std::tie(b.route, b.method, b.scope, b.protocol, b.grpc);
}

}  // namespace

namespace {

std::vector<const RouteSummary*> report_rows(const RouteTableSnapshot& table) {
  std::vector<const RouteSummary*> rows;
  rows.reserve(table.routes.size());
  for (const RouteSummary& r : table.routes) rows.push_back(&r);
  std::sort(rows.begin(), rows.end(), report_order);
  return rows;
}

// Everything but the routes (an empty array).
nlohmann::json report_frame(const RouteTableSnapshot& table, int64_t generated_at_ms,
                            double uptime_s) {
  nlohmann::json tls = nlohmann::json::array();
  for (const TlsSummary& t : table.tls) tls.push_back(tls_json(t));
  return {
      {"netprof", kReportVersion},
      {"generated_at_ms", generated_at_ms},
      {"uptime_s", round3(uptime_s)},
      {"routes", nlohmann::json::array()},
      {"overflowed_requests", table.overflowed_requests},
      {"tls", std::move(tls)},
      {"connections",
       {{"accepted", table.accepted},
        {"active", table.active},
        {"unparsed", table.unparsed},
        {"ambiguous_framing", table.ambiguous_framing},
        {"upstream_failed", table.upstream_failed},
        {"rejected", table.rejected},
        {"untracked_streams", table.untracked_streams},
        {"bytes_client_to_server", table.bytes_client_to_server},
        {"bytes_server_to_client", table.bytes_server_to_client}}},
  };
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

nlohmann::json build_report(const RouteTableSnapshot& table, int64_t generated_at_ms,
                            double uptime_s, bool with_flight) {
  nlohmann::json report = report_frame(table, generated_at_ms, uptime_s);
  nlohmann::json& routes = report["routes"];
  for (const RouteSummary* row : report_rows(table))
    routes.push_back(route_json(*row, with_flight));
  return report;
}

std::string report_json_line(const RouteTableSnapshot& table, int64_t generated_at_ms,
                             double uptime_s, const ScopeRegistry* scopes, bool with_flight) {
  std::optional<PodGrouping> grouping;
  if (scopes != nullptr) grouping.emplace(*scopes);
  std::string routes = "[";
  for (const RouteSummary* row : report_rows(table)) {
    nlohmann::json route = route_json(*row, with_flight);
    if (grouping) grouping->annotate(route);
    if (routes.size() > 1) routes += ',';
    routes += dump(route);
  }
  routes += ']';
  // nlohmann writes object keys sorted: "routes" comes after "pods" (whose entries have
  // "routes" keys of their own) and before "tls", so the last occurrence of the marker is
  // the top-level one; a string value cannot contain it unescaped.
  constexpr std::string_view kKey = "\"routes\":";
  constexpr std::string_view kMarker = "\"routes\":\"\\u0000routes\"";
  nlohmann::json frame = report_frame(table, generated_at_ms, uptime_s);
  frame["routes"] = std::string("\0routes", 7);
  if (grouping) frame["pods"] = grouping->take_pods();
  std::string out = dump(frame);
  const size_t at = out.rfind(kMarker);
  if (at == std::string::npos) {  // cannot happen; the tree is the reference if it does
    nlohmann::json report = build_report(table, generated_at_ms, uptime_s);
    if (scopes != nullptr) add_pod_grouping(report, *scopes);
    return dump(report);
  }
  out.replace(at + kKey.size(), kMarker.size() - kKey.size(), routes);
  return out;
}

nlohmann::json build_report(const RouteStore& store, int64_t generated_at_ms, double uptime_s) {
  return build_report(store.snapshot(), generated_at_ms, uptime_s);
}

}  // namespace netprof
