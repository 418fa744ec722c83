// How much counting costs per request: LatencyHistogram::record (fast log2 index against a
// std::log reference), quantile extraction, and RouteStore::on_exchange for a known route.
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "http/exchange.h"
#include "routes/route_namer.h"
#include "stats/asset_classifier.h"
#include "stats/histogram.h"
#include "stats/route_store.h"

namespace netprof {
namespace {

// Latency-like values (microseconds): lognormal around 1 ms with a long tail.
const std::vector<double>& samples() {
  static const std::vector<double> values = [] {
    std::mt19937_64 rng(1);
    std::lognormal_distribution<double> d(7.0, 1.5);
    std::vector<double> v(1 << 16);
    for (double& x : v) x = 1 + d(rng);
    return v;
  }();
  return values;
}

void BM_HistogramRecord(benchmark::State& state) {
  LatencyHistogram h;
  const auto& v = samples();
  size_t i = 0;
  for (auto _ : state) {
    h.record(v[i++ & (v.size() - 1)]);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramRecord);

// The same bucket rule computed with std::log: what the fast index is measured against.
void BM_ReferenceRecordWithStdLog(benchmark::State& state) {
  const double inv_log_gamma =
      1.0 / std::log((1 + LatencyHistogram::kRelativeAccuracy) / (1 - LatencyHistogram::kRelativeAccuracy));
  std::vector<uint32_t> buckets(LatencyHistogram::bucket_count());
  const auto& v = samples();
  size_t i = 0;
  for (auto _ : state) {
    const double x = v[i++ & (v.size() - 1)];
    const auto index = x <= 1 ? 0 : static_cast<size_t>(std::ceil(std::log(x) * inv_log_gamma));
    ++buckets[std::min(index, buckets.size() - 1)];
  }
  benchmark::DoNotOptimize(buckets.data());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReferenceRecordWithStdLog);

void BM_BucketIndexFast(benchmark::State& state) {
  const auto& v = samples();
  size_t i = 0, sum = 0;
  for (auto _ : state) sum += LatencyHistogram::bucket_index(v[i++ & (v.size() - 1)]);
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_BucketIndexFast);

void BM_BucketIndexStdLog(benchmark::State& state) {
  const double inv_log_gamma =
      1.0 / std::log((1 + LatencyHistogram::kRelativeAccuracy) / (1 - LatencyHistogram::kRelativeAccuracy));
  const auto& v = samples();
  size_t i = 0, sum = 0;
  for (auto _ : state) {
    const double x = v[i++ & (v.size() - 1)];
    sum += x <= 1 ? 0 : static_cast<size_t>(std::ceil(std::log(x) * inv_log_gamma));
  }
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_BucketIndexStdLog);

LatencyHistogram filled() {
  LatencyHistogram h;
  for (double x : samples()) h.record(x);
  return h;
}

void BM_HistogramQuantile(benchmark::State& state) {
  const LatencyHistogram h = filled();
  for (auto _ : state) benchmark::DoNotOptimize(h.quantile(0.99));
}
BENCHMARK(BM_HistogramQuantile);

void BM_HistogramThreeQuantilesOnePass(benchmark::State& state) {
  const LatencyHistogram h = filled();
  const double qs[] = {0.5, 0.9, 0.99};
  double out[3];
  for (auto _ : state) {
    h.quantiles(qs, out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_HistogramThreeQuantilesOnePass);

void BM_HistogramMerge(benchmark::State& state) {
  const LatencyHistogram h = filled();
  LatencyHistogram into;
  for (auto _ : state) into.merge(h);
  benchmark::DoNotOptimize(into.count());
}
BENCHMARK(BM_HistogramMerge);

// Drops the query and nothing else: isolates the store's own cost from route templating.
class QueryDroppingNamer : public RouteNamer {
 public:
  void name(std::string_view target, std::string& out) override {
    out.assign(target.substr(0, target.find('?')));
  }
};

// The relay thread's cost per exchange once its route exists: name, look up, count.
void route_store_known_route(benchmark::State& state, std::shared_ptr<RouteNamer> namer) {
  RouteStore store(StoreLimits{}, std::move(namer), std::make_shared<const AssetClassifier>());
  // Other routes present, as in a real service.
  const std::string path = "/api/v1/orders?customer=1234&page=2";
  Exchange e;
  e.method = 1;  // GET
  e.reason = "OK";
  e.status = 200;
  e.request_first_byte = 1'000'000'000;
  e.request_headers_done = 1'000'010'000;
  e.request_done = 1'000'010'000;
  e.response_headers_done = 1'001'510'000;
  e.response_done = 1'002'000'000;
  e.request_bytes = 420;
  e.response_bytes = 2800;
  e.response_body_bytes = 2500;
  std::vector<std::string> others;
  for (int i = 0; i < 500; ++i) others.push_back("/api/v1/item" + std::to_string(i));
  for (const auto& p : others) {
    e.path = p;
    store.on_exchange(e);
  }
  e.path = path;
  store.on_exchange(e);
  const auto& v = samples();
  size_t i = 0;
  for (auto _ : state) {
    e.response_headers_done = e.request_headers_done + static_cast<MonoNanos>(v[i++ & (v.size() - 1)] * 1000);
    store.on_exchange(e);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_RouteStoreKnownRoute(benchmark::State& state) {
  route_store_known_route(state, std::make_shared<RouteNamer>());
}
BENCHMARK(BM_RouteStoreKnownRoute);
void BM_RouteStoreKnownRouteQueryDroppingNamer(benchmark::State& state) {
  route_store_known_route(state, std::make_shared<QueryDroppingNamer>());
}
BENCHMARK(BM_RouteStoreKnownRouteQueryDroppingNamer);

}  // namespace
}  // namespace netprof

BENCHMARK_MAIN();
