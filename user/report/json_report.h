// The JSON report: the origin's "per-URL stats every 5 s", as one document. The shape is a
// contract with whoever reads netprof's output (version field "netprof": 1).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace netprof {

class RouteStore;
class ScopeRegistry;
struct RouteTableSnapshot;

inline constexpr int kReportVersion = 1;

// Routes sorted by count descending, then route, method and scope. Durations are
// milliseconds rounded to 3 decimals. Built from an immutable snapshot (pipeline/stats_hub.h),
// so building it holds no lock anything else needs.
// With `with_flight`, each route that has flight records gets them under "slow"
// (report/flight_json.h): /stats always, the periodic report and pushes with --report-slow.
nlohmann::json build_report(const RouteTableSnapshot& table, int64_t generated_at_ms,
                            double uptime_s, bool with_flight = false);
// build_report (with add_pod_grouping when `scopes` is set) as one line of JSON, the same
// bytes as dump(), but written route by route: the document is never held as a tree, which
// for 10,000 routes costs ~40 MiB against ~5 MiB of text (every /stats render, every push).
std::string report_json_line(const RouteTableSnapshot& table, int64_t generated_at_ms,
                             double uptime_s, const ScopeRegistry* scopes,
                             bool with_flight = false);
// The same from a store that no other thread uses (tests, tools).
nlohmann::json build_report(const RouteStore& store, int64_t generated_at_ms, double uptime_s);

}  // namespace netprof
