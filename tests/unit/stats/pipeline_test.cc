// The exchange pipeline (one relay worker's recording side) and the StatsHub (the aggregator):
// counts reach snapshots exactly, the relay side never waits and allocates nothing for known
// keys, renders are shared between readers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "allocation_counter.h"
#include "exchange_builder.h"
#include "export/otlp_json.h"
#include "export/prometheus_http.h"
#include "pipeline/exchange_pipeline.h"
#include "pipeline/stats_hub.h"
#include "report/json_report.h"

namespace netprof {
namespace {

using namespace netprof::testing;
using namespace std::chrono_literals;

struct Fixture {
  explicit Fixture(std::chrono::milliseconds interval = 20ms, size_t max_routes = 1000)
      : hub(StatsHubOptions{.interval = interval, .handoff_wait = 250ms},
            StoreLimits{.max_routes = max_routes}, HttpMetricsOptions{}, namer, nullptr),
        pipeline(options(max_routes), namer, nullptr, nullptr, hub.connections()) {
    hub.add_worker(&pipeline);
  }
  static PipelineOptions options(size_t max_routes) {
    PipelineOptions o;
    o.limits.max_routes = max_routes;
    o.max_hold = 10ms;
    return o;
  }
  uint64_t total(const StatsSnapshot& s) const {
    uint64_t n = 0;
    for (const RouteSummary& r : s.routes.routes) n += r.count;
    return n;
  }
  std::shared_ptr<RouteNamer> namer = std::make_shared<RouteNamer>();
  StatsHub hub;
  ExchangePipeline pipeline;
};

MonoNanos now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

TEST(StatsPipeline, EveryExchangeReachesTheSnapshotsExactlyWhileTheHubCollects) {
  Fixture f(5ms, 50);
  f.hub.start();
  constexpr int kExchanges = 200000;
  std::atomic<bool> done{false};
  std::thread relay([&] {  // the worker: records and ticks, as the relay loop does
    std::vector<std::string> paths;
    for (int i = 0; i < 80; ++i) paths.push_back("/r" + std::to_string(i));
    for (int i = 0; i < kExchanges; ++i) {
      f.pipeline.on_exchange(completed(paths[i % paths.size()], i % 10 ? 200 : 503));
      if (i % 64 == 0) f.pipeline.on_tick(now_ns());
    }
    done = true;
  });
  uint64_t last_total = 0, last_generation = 0;
  int snapshots_seen = 0;
  while (!done) {
    const auto snap = f.hub.snapshot();
    if (snap->generation != last_generation) ++snapshots_seen;
    EXPECT_GE(snap->generation, last_generation);
    EXPECT_GE(f.total(*snap), last_total) << "counts never go backwards";
    // A snapshot is consistent: the HTTP series count what the route table counts.
    uint64_t series = 0;
    for (const HttpSeries& s : snap->metrics.series) series += s.requests;
    EXPECT_EQ(series, f.total(*snap));
    last_total = f.total(*snap);
    last_generation = snap->generation;
    std::this_thread::sleep_for(1ms);
  }
  relay.join();
  f.hub.stop();
  f.hub.collect_now(/*workers_stopped=*/true);  // the relay's loop has returned
  const auto snap = f.hub.snapshot();
  EXPECT_EQ(f.total(*snap), static_cast<uint64_t>(kExchanges));
  EXPECT_EQ(snap->routes.routes.size(), 51u) << "50 routes and the overflow entry";
  // Past the cap, which keys each buffer admitted depends on when it was handed over, so
  // more than the 30 late routes' share may land in the overflow entry; never less.
  EXPECT_GE(snap->routes.overflowed_requests, kExchanges * 30u / 80u);
  uint64_t errors = 0;
  for (const RouteSummary& r : snap->routes.routes) errors += r.errors;
  EXPECT_EQ(errors, kExchanges / 10u);
  EXPECT_GT(snapshots_seen, 1) << "snapshots were published while the relay ran";
}

// An HTTP/2 gRPC call as the HTTP/2 tracker reports it.
Exchange grpc_call(std::string_view path, int16_t grpc_status) {
  Exchange e = completed(path, 200);
  e.method = kPost;
  e.protocol = WireProtocol::kHttp2;
  e.grpc = true;
  e.grpc_status = grpc_status;
  return e;
}

// Two workers record HTTP/1, HTTP/2 and gRPC exchanges; the aggregator's snapshot keeps the
// protocol, the gRPC method routes (never templated) and their status counts exactly, and every
// output shows them.
TEST(StatsPipeline, ProtocolAndGrpcStatusSurviveTheMergeOfWorkers) {
  Fixture f;
  ExchangePipeline second(Fixture::options(1000), f.namer, nullptr, nullptr, f.hub.connections());
  f.hub.add_worker(&second);
  const std::string method = "/demo.v1.Users/Get/12345";  // looks templatable; is a method
  for (int i = 0; i < 3; ++i) f.pipeline.on_exchange(grpc_call(method, 0));
  f.pipeline.on_exchange(grpc_call(method, 5));
  for (int i = 0; i < 2; ++i) second.on_exchange(grpc_call(method, 0));
  second.on_exchange(grpc_call(method, 14));
  Exchange reset = grpc_call(method, -1);  // RST_STREAM after the headers, before a status
  reset.outcome = ExchangeOutcome::kResetBeforeResponse;
  reset.status = 0;
  reset.response_done = 0;
  second.on_exchange(reset);
  Exchange h2 = completed("/users/7", 200);
  h2.protocol = WireProtocol::kHttp2;
  f.pipeline.on_exchange(h2);
  second.on_exchange(h2);
  f.pipeline.on_exchange(completed("/users/8", 200));  // HTTP/1: an entry of its own
  second.on_untracked_stream(0);
  f.hub.collect_now(/*workers_stopped=*/true);
  const auto snap = f.hub.snapshot();

  const RouteSummary* call = nullptr;
  const RouteSummary* users_h2 = nullptr;
  const RouteSummary* users_h1 = nullptr;
  for (const RouteSummary& r : snap->routes.routes) {
    if (r.route == method) call = &r;
    if (r.route == "/users/{id}") (r.protocol == WireProtocol::kHttp2 ? users_h2 : users_h1) = &r;
  }
  ASSERT_NE(call, nullptr) << "the gRPC method is its route, untemplated";
  ASSERT_NE(users_h2, nullptr);
  ASSERT_NE(users_h1, nullptr);
  EXPECT_EQ(snap->routes.routes.size(), 3u);
  EXPECT_TRUE(call->grpc);
  EXPECT_EQ(call->protocol, WireProtocol::kHttp2);
  EXPECT_EQ(call->method, "POST");
  EXPECT_EQ(call->count, 8u);
  EXPECT_EQ(call->errors, 3u) << "status 5, status 14 and the reset call";
  using Codes = std::vector<std::pair<uint8_t, uint64_t>>;
  EXPECT_EQ(call->grpc_status, (Codes{{0, 5}, {5, 1}, {14, 1}}));
  EXPECT_EQ(users_h2->count, 2u);
  EXPECT_FALSE(users_h2->grpc);
  EXPECT_EQ(users_h1->count, 1u);
  EXPECT_EQ(snap->routes.untracked_streams, 1u);

  // The report.
  const nlohmann::json report = build_report(snap->routes, 0, 0);
  for (const auto& r : report["routes"]) {
    if (r["route"] == method) {
      EXPECT_EQ(r["protocol"], "h2");
      EXPECT_EQ(r["grpc_status"], (nlohmann::json{{"0", 5}, {"5", 1}, {"14", 1}}));
    } else {
      EXPECT_FALSE(r.contains("grpc_status")) << r.dump();
      EXPECT_EQ(r.contains("protocol"), r["count"] == 2) << r.dump();
    }
  }
  EXPECT_EQ(report["connections"]["untracked_streams"], 1);

  // The series: one per gRPC status, merged across workers.
  std::map<int, uint64_t> series;
  for (const HttpSeries& s : snap->metrics.series) {
    if (s.grpc) series[s.grpc_status] += s.requests;
  }
  EXPECT_EQ(series, (std::map<int, uint64_t>{{-1, 1}, {0, 5}, {5, 1}, {14, 1}}));
  std::string text;
  PrometheusWriter w(text);
  write_http_metrics(w, snap->metrics, f.hub.metrics_options(), nullptr);
  const std::string rpc =
      "rpc_server_call_duration_seconds_count{rpc_system=\"grpc\",rpc_service=\"demo.v1.Users\","
      "rpc_method=\"Get/12345\",rpc_grpc_status_code=";
  EXPECT_NE(text.find(rpc + "\"0\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find(rpc + "\"14\"} 1\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("# TYPE rpc_server_call_duration_seconds histogram"),
            text.rfind("# TYPE rpc_server_call_duration_seconds histogram"))
      << "one family header";
  const nlohmann::json otlp = nlohmann::json::parse(
      build_otlp_metrics(snap->metrics, f.hub.metrics_options(), OtlpResource{}, 1));
  uint64_t rpc_points = 0;
  for (const auto& m : otlp["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]) {
    if (m["name"] != "rpc.server.call.duration") continue;
    for (const auto& p : m["histogram"]["dataPoints"]) {
      rpc_points += std::stoull(p["count"].get<std::string>());
      EXPECT_EQ(p["attributes"][0]["value"]["stringValue"], "grpc");
    }
  }
  EXPECT_EQ(rpc_points, 8u) << "every call that got response headers (the reset one too)";
}

TEST(StatsPipeline, AKnownKeyCostsNoAllocationAcrossHandOvers) {
  Fixture f;
  const std::string path = "/api/orders?page=2";
  Exchange ok = completed(path, 200), reset = failed(path, ExchangeOutcome::kResetBeforeResponse);
  // Warm both buffers: each sees the key and both statuses once.
  for (int round = 0; round < 2; ++round) {
    f.pipeline.on_exchange(ok);
    f.pipeline.on_exchange(reset);
    f.pipeline.request_handoff();
    f.pipeline.on_tick(now_ns());
    f.hub.collect_now();
  }
  const uint64_t before = allocations();
  for (int i = 0; i < 1000; ++i) {
    f.pipeline.on_exchange(i % 7 ? ok : reset);
    if (i % 100 == 0) {
      f.pipeline.request_handoff();
      f.pipeline.on_tick(now_ns());  // the relay's side of a hand-over
    }
  }
  const uint64_t relay_allocations = allocations() - before;
  EXPECT_EQ(relay_allocations, 0u);
  f.hub.collect_now(true);
  EXPECT_EQ(f.total(*f.hub.snapshot()), 1004u);
}

TEST(StatsPipeline, TheRelayNeverWaitsForTheHub) {
  Fixture f;
  // The hub holds nothing and does not run: publish succeeds once, then the relay keeps
  // recording into its buffer without blocking until the hub takes the first one.
  f.pipeline.on_exchange(completed("/a", 200));
  f.pipeline.request_handoff();
  f.pipeline.on_tick(now_ns());
  EXPECT_TRUE(f.pipeline.handoff().pending());
  for (int i = 0; i < 1000; ++i) {
    f.pipeline.on_exchange(completed("/a", 200));
    f.pipeline.request_handoff();
    f.pipeline.on_tick(now_ns());  // returns at once: the spare is still with the hub
  }
  f.hub.collect_now();
  EXPECT_EQ(f.total(*f.hub.snapshot()), 1u);
  f.hub.collect_now(true);
  EXPECT_EQ(f.total(*f.hub.snapshot()), 1001u);
}

TEST(StatsPipeline, ErasedScopesLeaveBothBuffersAndTheSnapshot) {
  Fixture f;
  Exchange a = completed("/a", 200), b = completed("/b", 200);
  a.scope = 7;
  b.scope = 8;
  f.pipeline.on_exchange(a);
  f.pipeline.on_exchange(b);
  f.hub.collect_now(true);
  ASSERT_EQ(f.hub.snapshot()->routes.routes.size(), 2u);
  f.hub.erase_scope(7);
  for (int i = 0; i < 3; ++i) {
    f.pipeline.on_tick(now_ns());
    f.hub.collect_now();
  }
  const auto snap = f.hub.snapshot();
  ASSERT_EQ(snap->routes.routes.size(), 1u);
  EXPECT_EQ(snap->routes.routes[0].scope, 8u);
  for (const HttpSeries& s : snap->metrics.series) EXPECT_NE(s.scope, 7u);
}

TEST(StatsPipeline, ConcurrentReadersShareOneRenderPerInterval) {
  Fixture f(1h);  // nothing expires during the test: one render, whatever the readers
  f.pipeline.on_exchange(completed("/a", 200));
  f.hub.collect_now(true);
  std::atomic<int> renders{0};
  auto render = [&](const StatsSnapshot& s) {
    ++renders;
    std::this_thread::sleep_for(20ms);  // readers pile up while it renders
    return "total " + std::to_string(f.total(s));
  };
  std::vector<std::thread> readers;
  std::vector<std::shared_ptr<const std::string>> got(16);
  for (size_t i = 0; i < got.size(); ++i) {
    readers.emplace_back([&, i] {
      for (int k = 0; k < 20; ++k) got[i] = f.hub.rendered("stats", render).bytes;
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(renders.load(), 1);
  std::set<const std::string*> distinct;
  for (const auto& g : got) distinct.insert(g.get());
  EXPECT_EQ(distinct.size(), 1u) << "every reader got the same bytes";
  EXPECT_EQ(*got[0], "total 1");
  EXPECT_EQ(f.hub.render_counts().at("stats"), 1u);
}

// A renderer that prints the snapshot's total and counts how often it ran.
auto counting_total_render(Fixture& f, int& renders) {
  return [&f, &renders](const StatsSnapshot& s) {
    ++renders;
    return std::to_string(f.total(s));
  };
}

TEST(StatsPipeline, ANewSnapshotIsRenderedOnceTheIntervalHasPassed) {
  Fixture f(30ms);
  int renders = 0;
  auto render = counting_total_render(f, renders);
  f.pipeline.on_exchange(completed("/a", 200));
  f.hub.collect_now(true);
  EXPECT_EQ(*f.hub.rendered("m", render).bytes, "1");
  f.pipeline.on_exchange(completed("/a", 200));
  f.hub.collect_now(true);
  EXPECT_EQ(*f.hub.rendered("m", render).bytes, "1") << "within the interval: the cached bytes";
  std::this_thread::sleep_for(40ms);
  EXPECT_EQ(*f.hub.rendered("m", render).bytes, "2");
  std::this_thread::sleep_for(40ms);
  EXPECT_EQ(*f.hub.rendered("m", render).bytes, "2");
  EXPECT_EQ(renders, 2) << "nothing new: not rendered again";
}

// Each worker counts connections and bytes in its own counters (no cache line shared between
// cores on every read); a snapshot carries their sum.
TEST(StatsPipeline, SnapshotsAddUpEveryWorkersConnectionCounters) {
  Fixture f;
  ConnectionCounters& first = f.hub.connections(0);
  ConnectionCounters& second = f.hub.connections(1);
  EXPECT_NE(&first, &second);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(&second) % 64, 0u) << "a cache line of its own";
  EXPECT_EQ(&f.hub.connections(0), &first) << "stable: the relay holds a reference";
  first.accepted += 3;
  first.bytes_client_to_server += 100;
  second.accepted += 4;
  second.active += 2;
  second.bytes_client_to_server += 11;
  second.unparsed += 1;
  f.hub.collect_now(true);
  const auto snap = f.hub.snapshot();
  EXPECT_EQ(snap->routes.accepted, 7u);
  EXPECT_EQ(snap->routes.active, 2u);
  EXPECT_EQ(snap->routes.unparsed, 1u);
  EXPECT_EQ(snap->routes.bytes_client_to_server, 111u);
  second.accepted += 1;  // only a counter moved: still news for the next snapshot
  f.hub.collect_now(true);
  EXPECT_EQ(f.hub.snapshot()->routes.accepted, 8u);
}

TEST(StatsPipeline, TheEntityTagNamesOneRenderOfOneOutput) {
  Fixture f(30ms);
  int renders = 0;
  auto render = counting_total_render(f, renders);
  f.pipeline.on_exchange(completed("/a", 200));
  f.hub.collect_now(true);
  const StatsHub::Rendered first = f.hub.rendered("m", render);
  EXPECT_EQ(first.etag.front(), '"');
  EXPECT_EQ(first.etag.back(), '"');
  EXPECT_EQ(f.hub.rendered("m", render).etag, first.etag) << "the cached bytes keep their tag";
  EXPECT_NE(f.hub.rendered("other", render).etag, first.etag) << "same bytes, other output";
  f.pipeline.on_exchange(completed("/a", 200));
  f.hub.collect_now(true);
  std::this_thread::sleep_for(40ms);
  const StatsHub::Rendered second = f.hub.rendered("m", render);
  EXPECT_EQ(*second.bytes, "2");
  EXPECT_NE(second.etag, first.etag);
}

TEST(StatsPipeline, OtherInputsChangingRenderAgainWithoutANewSnapshot) {
  // /stats shows pods from the ScopeRegistry: a pod marked gone is news without any exchange.
  Fixture f(30ms);
  int renders = 0;
  auto render = counting_total_render(f, renders);
  f.pipeline.on_exchange(completed("/a", 200));
  f.hub.collect_now(true);
  EXPECT_EQ(*f.hub.rendered("m", render, 7).bytes, "1");
  std::this_thread::sleep_for(40ms);
  EXPECT_EQ(*f.hub.rendered("m", render, 7).bytes, "1");
  EXPECT_EQ(renders, 1) << "same snapshot, same inputs: the cached bytes";
  EXPECT_EQ(*f.hub.rendered("m", render, 8).bytes, "1");
  EXPECT_EQ(renders, 2) << "the inputs moved: rendered again";
}

}  // namespace
}  // namespace netprof
