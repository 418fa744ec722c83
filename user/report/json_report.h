// The JSON report: the origin's "per-URL stats every 5 s", as one document. The shape is a
// contract with whoever reads netprof's output (version field "netprof": 1).
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

namespace netprof {

class RouteStore;

inline constexpr int kReportVersion = 1;

// Routes sorted by count descending, then route, method and scope. Durations are
// milliseconds rounded to 3 decimals. The store's lock is held only while copying the
// per-route summaries, not while the JSON is built.
nlohmann::json build_report(const RouteStore& store, int64_t generated_at_ms, double uptime_s);

}  // namespace netprof
