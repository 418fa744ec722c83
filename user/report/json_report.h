// The JSON report: the origin's "per-URL stats every 5 s", as one document. The shape is a
// contract with whoever reads netprof's output (version field "netprof": 1).
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

namespace netprof {

class RouteStore;
struct RouteTableSnapshot;

inline constexpr int kReportVersion = 1;

// Routes sorted by count descending, then route, method and scope. Durations are
// milliseconds rounded to 3 decimals. Built from an immutable snapshot (pipeline/stats_hub.h),
// so building it holds no lock anything else needs.
nlohmann::json build_report(const RouteTableSnapshot& table, int64_t generated_at_ms,
                            double uptime_s);
// The same from a store that no other thread uses (tests, tools).
nlohmann::json build_report(const RouteStore& store, int64_t generated_at_ms, double uptime_s);

}  // namespace netprof
