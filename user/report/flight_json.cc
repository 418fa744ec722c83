#include "report/flight_json.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <tuple>

#include "routes/secrets.h"  // without_userinfo
#include "stats/route_store.h"

namespace netprof {
namespace {

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }
double ms(MonoNanos ns) { return round3(static_cast<double>(ns) / 1e6); }

std::string method_text(uint8_t method) {
  const char* name = llhttp_method_name(static_cast<llhttp_method_t>(method));
  return name != nullptr ? name : "_OTHER";
}

std::string_view error_text(ExchangeOutcome outcome) {
  switch (outcome) {
    case ExchangeOutcome::kCompleted:
      return {};
    case ExchangeOutcome::kClosedBeforeResponse:
      return "connection_closed";
    case ExchangeOutcome::kResetBeforeResponse:
      return "connection_reset";
    case ExchangeOutcome::kUpstreamFailed:
      return "upstream_unreachable";
    case ExchangeOutcome::kParseError:
      return "response_parse_error";
  }
  return "unknown";
}

std::string peer_text(const PeerAddress& p) {
  char text[INET6_ADDRSTRLEN] = {};
  if (p.family == AF_INET) {
    inet_ntop(AF_INET, p.bytes, text, sizeof text);
    return std::string(text) + ":" + std::to_string(p.port);
  }
  if (p.family == AF_INET6) {
    inet_ntop(AF_INET6, p.bytes, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(p.port);
  }
  return {};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

nlohmann::json records_json(const std::vector<FlightRecord>& records, const SlowFilter* filter) {
  nlohmann::json out = nlohmann::json::array();
  for (const FlightRecord& r : records) {
    if (filter == nullptr || filter->matches(r)) out.push_back(flight_record_json(r));
  }
  return out;
}

}  // namespace

nlohmann::json flight_record_json(const FlightRecord& r) {
  nlohmann::json j = nlohmann::json::object();
  if (r.connection_id != 0) j["request_id"] = request_id_text(r.connection_id, r.sequence);
  if (!r.trace_view().empty()) j["trace_id"] = r.trace_view();
  j["started_ms"] = r.started_ms;
  j["method"] = method_text(r.method);
  if (r.has_path) {
    j["path"] = without_userinfo(r.path_view());
    if (r.path_truncated) j["path_truncated"] = true;
  }
  j["status"] = r.status;
  if (r.outcome != ExchangeOutcome::kCompleted) j["error"] = error_text(r.outcome);
  if (r.grpc && r.grpc_status >= 0) j["grpc_status"] = r.grpc_status;
  if (r.protocol == WireProtocol::kHttp2) j["protocol"] = "h2";
  j["duration_ms"] = ms(r.duration);
  j["request_bytes"] = r.request_bytes;
  j["response_bytes"] = r.response_bytes;
  if (r.peer.family != 0) j["peer"] = peer_text(r.peer);
  if (r.sequence != 0) j["nth_on_connection"] = r.sequence;
  // The timeline, in ms from the request's first byte; a step not seen is left out.
  static constexpr const char* kSteps[FlightRecord::kSteps] = {"accepted",           "request_head",
                                                               "upstream_connected", "request_sent",
                                                               "response_head",      "last_byte"};
  nlohmann::json timing = nlohmann::json::object();
  for (size_t i = 0; i < FlightRecord::kSteps; ++i) {
    if (r.at_us[i] == FlightRecord::kNotSeen) continue;
    const bool given_up = i == FlightRecord::kLastByte && r.outcome != ExchangeOutcome::kCompleted;
    timing[given_up ? "ended" : kSteps[i]] = round3(r.at_us[i] / 1e3);
  }
  j["timing_ms"] = std::move(timing);
  j["relay_held_ms"] = round3(r.relay_held_us / 1e3);
  return j;
}

nlohmann::json flight_json(const FlightView& view) {
  return {{"slow", records_json(view.slow, nullptr)},
          {"previous_slow", records_json(view.previous, nullptr)},
          {"failures", records_json(view.failures, nullptr)}};
}

std::string SlowFilter::parse_status(std::string_view text, std::vector<std::string>& out) {
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    const bool exact =
        item.size() == 3 && is_digit(item[0]) && is_digit(item[1]) && is_digit(item[2]);
    const bool klass = item.size() == 3 && item[0] >= '1' && item[0] <= '5' &&
                       (item[1] == 'x' || item[1] == 'X') && (item[2] == 'x' || item[2] == 'X');
    if (!exact && !klass && item != "error") {
      return "status filter '" + std::string(item) +
             "': use a code (404), a class (5xx) or 'error'";
    }
    out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return {};
}

std::string SlowFilter::parse_numbers(std::string_view min_ms_text, std::string_view limit_text) {
  // from_chars, not stod/stoull: those stop at the first byte they cannot read and take a
  // sign, so a typo filtered by a number nobody asked for.
  if (!min_ms_text.empty()) {
    double v = 0;
    const auto [end, ec] =
        std::from_chars(min_ms_text.data(), min_ms_text.data() + min_ms_text.size(), v);
    const bool whole = end == min_ms_text.data() + min_ms_text.size();
    if (ec != std::errc() || !whole || !std::isfinite(v) || v < 0)
      return "min_ms '" + std::string(min_ms_text) + "': use a number of milliseconds >= 0";
    min_ms = v;
  }
  if (!limit_text.empty()) {
    size_t v = 0;
    const auto [end, ec] =
        std::from_chars(limit_text.data(), limit_text.data() + limit_text.size(), v);
    if (ec != std::errc() || end != limit_text.data() + limit_text.size())
      return "limit '" + std::string(limit_text) + "': use a whole number of routes (0 = all)";
    limit = v;
  }
  return {};
}

namespace {

// Trace ids are hex (W3C, B3) or opaque (X-Request-Id); B3's may come in upper case, and a
// person pasting one may not keep its case.
bool same_id(std::string_view a, std::string_view b) {
  auto fold = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [&](char x, char y) { return fold(x) == fold(y); });
}

}  // namespace

bool SlowFilter::matches(const FlightRecord& r) const {
  if (min_ms > 0 && static_cast<double>(r.duration) / 1e6 < min_ms) return false;
  if (!id.empty() && !same_id(id, r.trace_view()) &&
      id != request_id_text(r.connection_id, r.sequence))
    return false;
  if (status.empty()) return true;
  const std::string code = r.status ? std::to_string(r.status) : std::string();
  for (const std::string& want : status) {
    if (want == "error") {  // what the failures list keeps: a gRPC error too (flight_failure)
      if (counts_as_error(r.outcome, r.status, r.grpc_status)) return true;
    } else if (!code.empty() &&
               (want == code || ((want[1] == 'x' || want[1] == 'X') && want[0] == code[0]))) {
      return true;
    }
  }
  return false;
}

std::string render_slow(const RouteTableSnapshot& table, const SlowFilter& filter,
                        const std::function<std::optional<std::string>(uint32_t)>& pod_of) {
  // Each route's JSON is written out as soon as it is built: a document of every route's
  // records as one JSON tree took several times its text in memory (about 100 MB for 10,000
  // routes), once per concurrent reader of a filtered /slow.
  struct Row {
    const RouteSummary* route;
    MonoNanos slowest;
    std::string text;
  };
  std::vector<Row> rows;
  for (const RouteSummary& r : table.routes) {
    if (!r.flight || r.flight->empty()) continue;
    if (!filter.route.empty()) {
      if (filter.route.back() == '*') {
        const std::string_view prefix =
            std::string_view(filter.route).substr(0, filter.route.size() - 1);
        if (std::string_view(r.route).substr(0, prefix.size()) != prefix) continue;
      } else if (r.route != filter.route) {
        continue;
      }
    }
    if (!filter.method.empty() && r.method != filter.method) continue;
    std::optional<std::string> pod;
    if (pod_of) pod = pod_of(r.scope);
    if (!filter.pod.empty() && (!pod || *pod != filter.pod)) continue;
    const FlightView& v = *r.flight;
    nlohmann::json slow = records_json(v.slow, &filter);
    nlohmann::json previous = records_json(v.previous, &filter);
    nlohmann::json failures = records_json(v.failures, &filter);
    if (slow.empty() && previous.empty() && failures.empty()) continue;
    MonoNanos slowest = 0;
    for (const auto* list : {&v.slow, &v.previous}) {
      for (const FlightRecord& rec : *list)
        if (filter.matches(rec)) slowest = std::max(slowest, rec.duration);
    }
    nlohmann::json j = {{"scope", r.scope}, {"method", r.method}, {"route", r.route}};
    if (r.protocol == WireProtocol::kHttp2) j["protocol"] = "h2";
    if (pod) j["pod"] = *pod;
    j["slow"] = std::move(slow);
    j["previous_slow"] = std::move(previous);
    j["failures"] = std::move(failures);
    rows.push_back(
        {&r, slowest, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.slowest != b.slowest) return a.slowest > b.slowest;
    return std::tie(a.route->route, a.route->method, a.route->scope) <
           std::tie(b.route->route, b.route->method, b.route->scope);
  });
  if (filter.limit != 0 && rows.size() > filter.limit)
    rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(filter.limit), rows.end());
  constexpr std::string_view kOpen = "{\"routes\":[", kClose = "]}";
  size_t size = kOpen.size() + kClose.size() + 1;  // + 1: room for the caller's newline
  for (const Row& row : rows) size += row.text.size() + 1;
  std::string out;
  out.reserve(size);
  out += kOpen;
  for (Row& row : rows) {
    if (out.size() != kOpen.size()) out += ',';
    out += row.text;
    std::string().swap(row.text);  // given back as it is copied
  }
  out += kClose;
  return out;
}

nlohmann::json build_slow(const RouteTableSnapshot& table, const SlowFilter& filter,
                          const std::function<std::optional<std::string>(uint32_t)>& pod_of) {
  return nlohmann::json::parse(render_slow(table, filter, pod_of));
}

}  // namespace netprof
