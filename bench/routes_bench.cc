// What naming a request costs: RouteNamer::name() on realistic request-targets, warm (the
// per-position state has seen the values already), for the default templating (ids, tokens,
// cardinality caps), with a query string dropped, and with user patterns tried first.
// Reports ns per name; compare with tracker_bench's per-request cost.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "routes/route_namer.h"
#include "routes/route_pattern.h"

namespace {

std::vector<std::string> make_targets(size_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  static const char* kShapes[] = {
      "/api/v1/users/%zu/orders/%zu",
      "/api/v1/users/%zu/profile?fields=name,email&ts=%zu",
      "/static/js/app.%zx.js",
      "/items/3f2a%zx-9c1d-4b7e-8a6f-0123456789ab",
      "/search?q=term%zu&page=%zu",
      "/health",
      "/v2/catalog/category/shoes/sku/%zu",
  };
  char buf[256];
  for (size_t i = 0; i < n; ++i) {
    const char* shape = kShapes[i % std::size(kShapes)];
    std::snprintf(buf, sizeof buf, shape, i * 7919 % 100000, i * 31 % 1000);
    out.emplace_back(buf);
  }
  return out;
}

void run(benchmark::State& state, netprof::RouteNamer& namer) {
  const auto targets = make_targets(4096);
  std::string out;
  for (const auto& t : targets) namer.name(t, out);  // warm: positions and capacity
  size_t i = 0;
  for (auto _ : state) {
    namer.name(targets[i++ & 4095], out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_NameDefault(benchmark::State& state) {
  netprof::RouteNamer namer;
  run(state, namer);
}
BENCHMARK(BM_NameDefault);

void BM_NameKeepQuery(benchmark::State& state) {
  netprof::RouteNamerOptions o;
  o.keep_query = true;
  netprof::RouteNamer namer(o);
  run(state, namer);
}
BENCHMARK(BM_NameKeepQuery);

void BM_NameWithPatterns(benchmark::State& state) {
  netprof::RouteNamerOptions o;
  std::string error;
  for (const char* p : {"/api/v1/users/{id}/orders/{order}", "/api/v1/users/{id}/profile",
                        "/v2/catalog/**", "/never/{a}/matches", "/static/{file...}"}) {
    o.patterns.push_back(*netprof::RoutePattern::parse(p, error));
  }
  netprof::RouteNamer namer(o);
  run(state, namer);
}
BENCHMARK(BM_NameWithPatterns);

// The cold path: every target is new (a million distinct raw URLs), so positions fill up
// and collapse; this is what the cardinality caps cost before they kick in.
void BM_NameDistinct(benchmark::State& state) {
  netprof::RouteNamer namer;
  std::string out, target;
  size_t i = 0;
  for (auto _ : state) {
    target = "/item/" + std::to_string(i) + "/tok" + std::to_string(i * 2654435761u % 999983);
    ++i;
    namer.name(target, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NameDistinct);

}  // namespace

BENCHMARK_MAIN();
