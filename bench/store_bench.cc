// What counting an exchange costs in a relay worker's delta store, with the flight recorder
// off (--slow-per-route 0) and on (the default 5), including the hand-over: every 16,384
// exchanges the aggregator merges the delta and clears it, as the stats hub does each second.
// 1,000 routes, latencies spread over two decades so that some exchanges keep beating the
// kept ones. Reports ns per exchange; the recorder's cost is the difference between the rows
// (issue #15 asks for <= 5% of the relay's CPU per request, ~10-19 us in bench/run).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "http/exchange.h"
#include "stats/route_store.h"

namespace {

using netprof::Exchange;
using netprof::MonoNanos;

struct Workload {
  std::vector<std::string> routes;
  std::vector<Exchange> exchanges;
};

Workload make_workload(size_t routes, size_t exchanges) {
  Workload w;
  for (size_t i = 0; i < routes; ++i) w.routes.push_back("/api/v1/things" + std::to_string(i));
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> latency_us(6.5, 0.8);  // median ~0.7 ms
  MonoNanos t = 1'000'000'000;
  for (size_t i = 0; i < exchanges; ++i) {
    Exchange e;
    e.method = 1;  // GET
    e.status = i % 97 == 0 ? 503 : 200;
    e.reason = "OK";
    e.connection_id = 1 + i % 64;
    e.sequence = static_cast<uint32_t>(1 + i / 64);
    e.request_first_byte = t;
    e.request_headers_done = t + 2'000;
    e.request_done = t + 2'000;
    e.request_sent = t + 5'000;
    const auto lat = static_cast<MonoNanos>(latency_us(rng) * 1000);
    e.response_headers_done = e.request_headers_done + lat;
    e.response_done = e.response_headers_done + 20'000;
    e.request_bytes = 120;
    e.response_bytes = 700;
    w.exchanges.push_back(e);
    t += 50'000;
  }
  return w;
}

void run(benchmark::State& state, size_t per_route) {
  const Workload w = make_workload(1000, 64 * 1024);
  netprof::StoreLimits limits;
  limits.flight.per_route = per_route;
  limits.defer_histograms = true;
  netprof::RouteStore delta(limits, nullptr, nullptr);
  limits.defer_histograms = false;
  netprof::RouteStore total(limits, nullptr, nullptr);
  total.set_flight_window(1, INT64_MAX);
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++ & (w.exchanges.size() - 1);
    delta.record(w.exchanges[k], w.routes[k % w.routes.size()]);
    if (i % 16384 == 0) {  // ~16 exchanges per route per hand-over
      total.merge_from(delta);
      delta.clear_counts();
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_StoreRecorderOff(benchmark::State& state) { run(state, 0); }
BENCHMARK(BM_StoreRecorderOff);
void BM_StoreRecorderOn(benchmark::State& state) { run(state, 5); }
BENCHMARK(BM_StoreRecorderOn);

}  // namespace

BENCHMARK_MAIN();
