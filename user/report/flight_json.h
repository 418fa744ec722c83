// The flight recorder's records as JSON: under each route of /stats (and of the report with
// --report-slow), and as /slow, filtered like /tap. The shapes are part of the JSON contract:
// fields may be added, never renamed.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stats/flight_recorder.h"

namespace netprof {

struct RouteTableSnapshot;

// {"slow": [...], "previous_slow": [...], "failures": [...]}: the current window's slowest
// (slowest first), the previous window's, and the most recent failures (newest first).
nlohmann::json flight_json(const FlightView& view);
// One record: request_id, trace_id, started_ms, method, status, error, duration_ms, bytes, peer,
// nth_on_connection, timing_ms (offsets from the request's first byte), relay_held_ms, path
// (only if it was kept: --raw-path).
nlohmann::json flight_record_json(const FlightRecord& r);

// What /slow?route=&method=&status=&min_ms=&pod=&id=&limit= asks for.
struct SlowFilter {
  std::string route;                // exact, or a prefix when it ends with '*'; empty = all
  std::string method;               // empty = all
  std::vector<std::string> status;  // "404", "5xx", "error" (what the failures list keeps)
  double min_ms = 0;                // records at least this slow (duration)
  std::string pod;                  // node mode: the pod's name (scopes without a pod never match)
  std::string id;                   // a request id or a trace id: only that request
  size_t limit = 0;                 // at most this many routes; 0 = all
  // Returns an error text for a malformed status list (see TapFilter::parse_status).
  static std::string parse_status(std::string_view text, std::vector<std::string>& out);
  // Sets min_ms and limit from their texts (empty: the default); an error text unless each is
  // a whole number as written: "5abc", "0x10", "-1" or "1.5" for a limit are refused, not
  // read as 5, 16, 2^64-1 or 1.
  std::string parse_numbers(std::string_view min_ms_text, std::string_view limit_text);
  bool matches(const FlightRecord& r) const;
};

// /slow: {"routes": [{scope, method, route, protocol?, pod?, slow, previous_slow, failures}]},
// routes ordered by their slowest record, records filtered, routes left without a record
// dropped. `pod_of` names a scope's pod (node mode), or is empty.
// The same as text, written route by route (what /slow serves: no JSON tree of the whole).
std::string render_slow(const RouteTableSnapshot& table, const SlowFilter& filter,
                        const std::function<std::optional<std::string>(uint32_t)>& pod_of);
nlohmann::json build_slow(const RouteTableSnapshot& table, const SlowFilter& filter,
                          const std::function<std::optional<std::string>(uint32_t)>& pod_of);

}  // namespace netprof
