#include "report/json_report.h"

#include <gtest/gtest.h>

#include <string>

#include "../stats/exchange_builder.h"
#include "report/pod_grouping.h"
#include "report/report_writer.h"
#include "stats/scope_registry.h"
#include "stats/route_store.h"

namespace netprof {
namespace {

using namespace netprof::testing;
using nlohmann::json;

RouteStore make_store(size_t max_routes = 1000) {
  return RouteStore(StoreLimits{.max_routes = max_routes}, nullptr, nullptr);
}

TEST(JsonReport, TopLevelContract) {
  RouteStore store = make_store();
  store.connections().accepted = 9;
  store.connections().active = 2;
  store.connections().upstream_failed = 1;
  store.on_unparsed_connection(0);
  const json r = build_report(store, 1542964406354, 12.34567);

  EXPECT_EQ(r.at("netprof"), 1);
  EXPECT_TRUE(r.at("netprof").is_number_integer());
  EXPECT_EQ(r.at("generated_at_ms"), 1542964406354);
  EXPECT_TRUE(r.at("uptime_s").is_number_float());
  EXPECT_DOUBLE_EQ(r.at("uptime_s").get<double>(), 12.346);
  EXPECT_TRUE(r.at("routes").is_array());
  EXPECT_TRUE(r.at("routes").empty());
  const json& c = r.at("connections");
  EXPECT_EQ(c.at("accepted"), 9);
  EXPECT_EQ(c.at("active"), 2);
  EXPECT_EQ(c.at("unparsed"), 1);
  EXPECT_EQ(c.at("upstream_failed"), 1);
  EXPECT_EQ(c.at("rejected"), 0);
  EXPECT_EQ(r.at("overflowed_requests"), 0);
}

TEST(JsonReport, RouteContract) {
  RouteStore store = make_store();
  const Exchange first = completed("/home?q=1", 200, 1500, 2000, 5'000'000'000);
  store.on_exchange(first);
  Exchange slow = completed("/home", 200, 12345.678, 13000, 6'000'000'000);
  store.on_exchange(slow);
  store.on_exchange(completed("/home", 503, 800, 900, 7'000'000'000));
  const json r = build_report(store, 0, 0);

  ASSERT_EQ(r.at("routes").size(), 1u);
  const json& route = r.at("routes")[0];
  EXPECT_EQ(route.at("method"), "GET");
  EXPECT_EQ(route.at("route"), "/home");
  EXPECT_EQ(route.at("file"), false);
  EXPECT_TRUE(route.at("file").is_boolean());
  EXPECT_EQ(route.at("count"), 3);
  EXPECT_TRUE(route.at("count").is_number_unsigned());
  EXPECT_EQ(route.at("errors"), 1);
  EXPECT_EQ(route.at("status"), json({{"200", 2}, {"503", 1}}));
  EXPECT_EQ(route.at("request_bytes"), 3 * 120);
  EXPECT_EQ(route.at("response_bytes"), 3 * 700);
  EXPECT_EQ(route.at("scope"), 0);
  EXPECT_EQ(route.at("overflow"), false);
  EXPECT_FALSE(route.contains("truncated"));
  EXPECT_EQ(route.at("first_seen_ms"), store.epoch_ms(first.request_first_byte));

  const json& latency = route.at("latency_ms");
  ASSERT_EQ(latency.size(), 6u);
  for (const char* key : {"min", "mean", "p50", "p90", "p99", "max"}) {
    ASSERT_TRUE(latency.contains(key)) << key;
    EXPECT_TRUE(latency.at(key).is_number()) << key;
  }
  EXPECT_DOUBLE_EQ(latency.at("min").get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(latency.at("max").get<double>(), 12.346);  // rounded to 3 decimals
  EXPECT_DOUBLE_EQ(latency.at("mean").get<double>(), 4.882);  // (0.8+1.5+12.345678)/3
  EXPECT_NEAR(latency.at("p50").get<double>(), 1.5, 0.015);
  EXPECT_NEAR(latency.at("p99").get<double>(), 1.5, 0.015);  // rank floor(0.99*2) = 1
  EXPECT_TRUE(route.at("total_ms").is_object());
  EXPECT_DOUBLE_EQ(route.at("total_ms").at("max").get<double>(), 13.0);

  const json& last = route.at("last");
  EXPECT_EQ(last.at("status"), 503);
  EXPECT_EQ(last.at("state"), "Internal Server Error");
  EXPECT_DOUBLE_EQ(last.at("time_ms").get<double>(), 0.8);
  EXPECT_EQ(last.at("started_ms"), store.epoch_ms(7'000'000'000 - 1000));
}

TEST(JsonReport, FailuresAndAssetsShowUp) {
  RouteStore store = make_store();
  store.on_exchange(failed("/upload", ExchangeOutcome::kUpstreamFailed));
  store.on_exchange(completed("/logo.png", 200));
  const json r = build_report(store, 0, 0);
  ASSERT_EQ(r.at("routes").size(), 2u);
  for (const json& route : r.at("routes")) {
    if (route.at("route") == "/upload") {
      EXPECT_EQ(route.at("status"), json({{"0", 1}}));
      EXPECT_EQ(route.at("errors"), 1);
      EXPECT_EQ(route.at("last").at("state"), "upstream unreachable");
      EXPECT_EQ(route.at("latency_ms").at("p50"), 0);
      EXPECT_EQ(route.at("latency_samples"), 0);
    } else {
      EXPECT_EQ(route.at("route"), "/logo.png");
      EXPECT_EQ(route.at("file"), true);
    }
  }
}

TEST(JsonReport, RoutesSortedByCountDescendingThenRoute) {
  RouteStore store = make_store();
  auto feed = [&](const char* path, int n) {
    for (int i = 0; i < n; ++i) store.on_exchange(completed(path, 200));
  };
  feed("/b", 2);
  feed("/z", 5);
  feed("/a", 2);
  feed("/c", 1);
  feed("/m", 5);
  const json r = build_report(store, 0, 0);
  std::vector<std::string> order;
  for (const json& route : r.at("routes")) order.push_back(route.at("route"));
  EXPECT_EQ(order, (std::vector<std::string>{"/m", "/z", "/a", "/b", "/c"}));
}

TEST(JsonReport, OverflowEntryAndCounter) {
  RouteStore store = make_store(1);
  store.on_exchange(completed("/kept", 200));
  store.on_exchange(completed("/spilled-1", 200));
  store.on_exchange(completed("/spilled-2", 200));
  const json r = build_report(store, 0, 0);
  EXPECT_EQ(r.at("overflowed_requests"), 2);
  const json& first = r.at("routes")[0];
  EXPECT_EQ(first.at("route"), "{overflow}");
  EXPECT_EQ(first.at("method"), "*");
  EXPECT_EQ(first.at("overflow"), true);
  EXPECT_EQ(first.at("count"), 2);
}

// /stats and pushes write the report route by route instead of as one tree: the bytes must
// be exactly the tree's, pods and all, whatever the routes are named.
TEST(JsonReport, TheLineWrittenRouteByRouteIsTheTreeDumped) {
  RouteStore store = make_store();
  Exchange tricky = completed("/\"routes\":\"\\u0000routes\"", 200);  // the marker itself
  tricky.scope = 16;
  store.on_exchange(tricky);
  for (int i = 0; i < 50; ++i) {
    const std::string path = "/item/" + std::to_string(i % 7) + "x";  // the exchange views it
    Exchange e = completed(path, i % 5 ? 200 : 503);
    e.scope = i % 3 == 0 ? 16 : i % 3 == 1 ? 17 : 0;
    store.on_exchange(e);
  }
  store.on_exchange(completed("/caf\xe9/\xff", 200));
  ScopeRegistry registry;
  ScopeInfo web;
  web.pod_name = "web-1";
  web.pod_uid = "u1";
  registry.set(16, web);
  ScopeInfo idle;  // a pod with no routes: its "routes" is an empty array too
  idle.pod_name = "idle";
  idle.pod_uid = "u3";
  registry.set(18, idle);
  const RouteTableSnapshot table = store.snapshot();
  auto tree_dump = [&](const ScopeRegistry* scopes) {
    json report = build_report(table, 1234, 5.5);
    if (scopes != nullptr) add_pod_grouping(report, *scopes);
    return report.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  EXPECT_EQ(report_json_line(table, 1234, 5.5, nullptr), tree_dump(nullptr));
  const std::string line = report_json_line(table, 1234, 5.5, &registry);
  EXPECT_EQ(line, tree_dump(&registry));
  EXPECT_EQ(json::parse(line)["pods"].size(), 2u);
  EXPECT_EQ(report_json_line(RouteStore(StoreLimits{.max_routes = 10}, nullptr, nullptr).snapshot(),
                             0, 0, nullptr),
            json(build_report(
                     RouteStore(StoreLimits{.max_routes = 10}, nullptr, nullptr).snapshot(), 0, 0))
                .dump(-1, ' ', false, json::error_handler_t::replace));
}

TEST(JsonReport, RawBytesInPathsStillSerialise) {
  RouteStore store = make_store();
  store.on_exchange(completed("/caf\xe9/\xff\xfe", 200));  // Latin-1, not UTF-8
  const std::string line = serialize_report(build_report(store, 0, 0));
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one document per line";
  const json parsed = json::parse(line);
  EXPECT_EQ(parsed.at("routes")[0].at("count"), 1);
}

}  // namespace
}  // namespace netprof
