#include "stats/route_store.h"

#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "allocation_counter.h"
#include "exchange_builder.h"
#include "routes/route_namer.h"
#include "stats/asset_classifier.h"


namespace netprof {
namespace {

using namespace netprof::testing;

std::map<std::string, RouteStats> snapshot(const RouteStore& store) {
  std::map<std::string, RouteStats> out;
  store.for_each([&](const RouteStats& s) {
    out.emplace(std::to_string(s.scope) + " " + s.method + " " + s.route, s);
  });
  return out;
}

RouteStore make_store(size_t max_routes = 1000) {
  return RouteStore(StoreLimits{.max_routes = max_routes}, nullptr, nullptr);
}

// Collapses all-digit segments, as a templating namer would.
class DigitsToIdNamer : public RouteNamer {
 public:
  void name(std::string_view target, std::string& out) override {
    RouteNamer::name(target, out);
    std::string result;
    size_t start = 0;
    while (start < out.size()) {
      size_t end = out.find('/', start + 1);
      if (end == std::string::npos) end = out.size();
      const std::string segment = out.substr(start, end - start);
      const bool digits = segment.size() > 1 && segment.find_first_not_of("/0123456789") == std::string::npos;
      result += digits ? "/{id}" : segment;
      start = end;
    }
    out = result;
  }
};

TEST(RouteStore, KeysByScopeMethodAndRouteWithTheQueryDropped) {
  RouteStore store = make_store();
  store.on_exchange(completed("/home", 200));
  store.on_exchange(completed("/home?session=secret", 200));
  Exchange post = completed("/home", 200);
  post.method = kPost;
  store.on_exchange(post);
  Exchange other_pod = completed("/home", 200);
  other_pod.scope = 7;
  store.on_exchange(other_pod);

  const auto s = snapshot(store);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s.at("0 GET /home").count, 2u);
  EXPECT_EQ(s.at("0 POST /home").count, 1u);
  EXPECT_EQ(s.at("7 GET /home").count, 1u);
  EXPECT_EQ(s.at("7 GET /home").scope, 7u);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.overflowed_requests(), 0u);
}

TEST(RouteStore, UsesTheNamerItIsGiven) {
  RouteStore store(StoreLimits{}, std::make_shared<DigitsToIdNamer>(), nullptr);
  store.on_exchange(completed("/users/17", 200));
  store.on_exchange(completed("/users/42?x=1", 200));
  const auto s = snapshot(store);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s.begin()->second.route, "/users/{id}");
  EXPECT_EQ(s.begin()->second.count, 2u);
}

TEST(RouteStore, CountsStatusesErrorsAndBytes) {
  RouteStore store = make_store();
  store.on_exchange(completed("/api", 200));
  store.on_exchange(completed("/api", 200));
  store.on_exchange(completed("/api", 404));
  store.on_exchange(completed("/api", 503));
  store.on_exchange(failed("/api", ExchangeOutcome::kResetBeforeResponse));

  const RouteStats r = snapshot(store).at("0 GET /api");
  EXPECT_EQ(r.count, 5u);
  EXPECT_EQ(r.errors, 2u) << "a 5xx and a reset count; a 404 does not";
  const std::vector<std::pair<uint16_t, uint64_t>> statuses = {
      {0, 1}, {200, 2}, {404, 1}, {503, 1}};  // ascending, whatever order they came in
  EXPECT_EQ(std::vector(r.status.begin(), r.status.end()), statuses);
  EXPECT_EQ(r.request_bytes, 4u * 120 + 80);
  EXPECT_EQ(r.response_bytes, 4u * 700);
  EXPECT_EQ(r.response_body_bytes, 4u * 512);
  EXPECT_EQ(r.request_body_bytes, 0u);
  EXPECT_FALSE(r.file);
  EXPECT_EQ(r.method, "GET");
}

TEST(RouteStore, RecordsLatencyAndTotalTimeInMicroseconds) {
  RouteStore store = make_store();
  store.on_exchange(completed("/t", 200, 1000, 3000));
  store.on_exchange(completed("/t", 200, 2000, 5000));
  store.on_exchange(failed("/t", ExchangeOutcome::kClosedBeforeResponse));
  const RouteStats r = snapshot(store).at("0 GET /t");
  EXPECT_EQ(r.latency.count(), 2u) << "an exchange without response headers has no latency";
  EXPECT_EQ(r.latency.min(), 1000);
  EXPECT_EQ(r.latency.max(), 2000);
  EXPECT_EQ(r.latency.mean(), 1500);
  EXPECT_EQ(r.total_time.count(), 2u);
  EXPECT_EQ(r.total_time.max(), 5000);
}

TEST(RouteStore, LastSampleIsTheMostRecentExchange) {
  RouteStore store = make_store();
  Exchange first = completed("/x", 200, 1500, 2000, 5'000'000'000);
  store.on_exchange(first);
  RouteStats r = snapshot(store).at("0 GET /x");
  EXPECT_EQ(r.last.started_ms, store.epoch_ms(first.request_first_byte));
  EXPECT_EQ(r.first_seen_ms, store.epoch_ms(first.request_first_byte));
  EXPECT_DOUBLE_EQ(r.last.time_ms, 1.5);
  EXPECT_EQ(r.last.status, 200);
  EXPECT_EQ(r.last.state, "OK");

  Exchange second = completed("/x", 404, 250, 300, 9'000'000'000);
  store.on_exchange(second);
  r = snapshot(store).at("0 GET /x");
  EXPECT_EQ(r.last.started_ms, store.epoch_ms(second.request_first_byte));
  EXPECT_EQ(r.first_seen_ms, store.epoch_ms(first.request_first_byte));
  EXPECT_DOUBLE_EQ(r.last.time_ms, 0.25);
  EXPECT_EQ(r.last.status, 404);
  EXPECT_EQ(r.last.state, "Not Found");
}

TEST(RouteStore, FailuresAreNamedInTheLastSample) {
  const std::pair<ExchangeOutcome, std::string> cases[] = {
      {ExchangeOutcome::kClosedBeforeResponse, "connection closed before response"},
      {ExchangeOutcome::kResetBeforeResponse, "connection reset"},
      {ExchangeOutcome::kUpstreamFailed, "upstream unreachable"},
      {ExchangeOutcome::kParseError, "unparseable response"},
  };
  for (const auto& [outcome, text] : cases) {
    RouteStore store = make_store();
    store.on_exchange(failed("/f", outcome));
    const RouteStats r = snapshot(store).at("0 GET /f");
    EXPECT_EQ(r.last.state, text);
    EXPECT_EQ(r.last.status, 0);
    EXPECT_EQ(r.last.time_ms, 0);
    EXPECT_EQ(r.errors, 1u);
  }
}

TEST(RouteStore, LongReasonPhrasesAreCapped) {
  RouteStore store = make_store();
  const std::string reason(500, 'r');
  Exchange e = completed("/r", 200);
  e.reason = reason;
  store.on_exchange(e);
  EXPECT_EQ(snapshot(store).at("0 GET /r").last.state, reason.substr(0, LastSample::kMaxStateBytes));
}

TEST(RouteStore, MarksStaticAssetsWithTheClassifier) {
  RouteStore store = make_store();
  store.on_exchange(completed("/logo.png?v=2", 200));
  store.on_exchange(completed("/v1.2/users", 200));
  const auto s = snapshot(store);
  EXPECT_TRUE(s.at("0 GET /logo.png").file);
  EXPECT_FALSE(s.at("0 GET /v1.2/users").file);

  RouteStore custom(StoreLimits{}, nullptr,
                    std::make_shared<const AssetClassifier>(std::vector<std::string>{"json"}));
  custom.on_exchange(completed("/data.json", 200));
  custom.on_exchange(completed("/logo.png", 200));
  const auto c = snapshot(custom);
  EXPECT_TRUE(c.at("0 GET /data.json").file);
  EXPECT_FALSE(c.at("0 GET /logo.png").file);
}

TEST(RouteStore, NamesUnknownMethodsByNumber) {
  RouteStore store = make_store();
  Exchange e = completed("/m", 200);
  e.method = 24;  // llhttp's M-SEARCH
  store.on_exchange(e);
  e.method = 250;
  store.on_exchange(e);
  const auto s = snapshot(store);
  EXPECT_EQ(s.count("0 M-SEARCH /m"), 1u);
  EXPECT_EQ(s.count("0 METHOD_250 /m"), 1u);
}

TEST(RouteStore, PastMaxRoutesNewKeysGoToOneOverflowEntryAndNothingIsLost) {
  constexpr size_t kMax = 5;
  RouteStore store = make_store(kMax);
  uint64_t fed = 0;
  std::vector<std::string> paths;
  for (int i = 0; i < 20; ++i) paths.push_back("/p" + std::to_string(i));
  for (int round = 0; round < 3; ++round) {
    for (const auto& p : paths) {
      store.on_exchange(completed(p, 200));
      ++fed;
    }
  }
  EXPECT_EQ(store.size(), kMax + 1);
  EXPECT_EQ(store.overflowed_requests(), 3u * (20 - kMax));

  const uint64_t overflowed = store.overflowed_requests();
  uint64_t total = 0;
  int overflow_entries = 0;
  store.for_each([&](const RouteStats& s) {
    total += s.count;
    if (s.overflow) {
      ++overflow_entries;
      EXPECT_EQ(s.method, "*");
      EXPECT_EQ(s.route, "{overflow}");
      EXPECT_EQ(s.count, overflowed);
    } else {
      EXPECT_EQ(s.count, 3u) << s.route << ": keys that got in keep counting";
    }
  });
  EXPECT_EQ(overflow_entries, 1);
  EXPECT_EQ(total, fed);
}

TEST(RouteStore, ZeroMaxRoutesCountsEverythingAsOverflow) {
  RouteStore store = make_store(0);
  store.on_exchange(completed("/a", 200));
  store.on_exchange(completed("/b", 500));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.overflowed_requests(), 2u);
  const RouteStats r = snapshot(store).at("0 * {overflow}");
  EXPECT_EQ(r.count, 2u);
  EXPECT_EQ(r.errors, 1u);
}

TEST(RouteStore, UnparsedConnectionsAreCounted) {
  RouteStore store = make_store();
  store.on_unparsed_connection(3);
  store.on_unparsed_connection(3);
  EXPECT_EQ(store.connections().unparsed.load(), 2u);
  EXPECT_EQ(store.size(), 0u);
}

TEST(RouteStore, EpochMsMapsMonotonicTimeToWallClock) {
  RouteStore store = make_store();
  timespec mono{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t mapped = store.epoch_ms(int64_t{mono.tv_sec} * 1'000'000'000 + mono.tv_nsec);
  EXPECT_NEAR(static_cast<double>(mapped), static_cast<double>(wall), 5000.0);
  EXPECT_EQ(store.epoch_ms(2'000'000'000) - store.epoch_ms(1'000'000'000), 1000);
}

TEST(RouteStore, AKnownKeyCostsNoAllocation) {
  RouteStore store = make_store();
  const std::string path = "/api/orders?page=2&sort=date";
  store.on_exchange(completed(path, 200));  // creates the key and its status
  store.on_exchange(failed(path, ExchangeOutcome::kResetBeforeResponse));  // status 0 too
  Exchange e = completed(path, 200);
  const uint64_t before = allocations();
  for (int i = 0; i < 1000; ++i) {
    e.status = i % 7 ? 200 : 0;
    e.outcome = i % 7 ? ExchangeOutcome::kCompleted : ExchangeOutcome::kResetBeforeResponse;
    store.on_exchange(e);
  }
  EXPECT_EQ(allocations() - before, 0u);
  EXPECT_EQ(snapshot(store).at("0 GET /api/orders").count, 1002u);
}

TEST(RouteStore, MergeAddsCountsAndHistogramsExactly) {
  RouteStore a = make_store(), b = make_store(), all = make_store();
  for (int i = 0; i < 300; ++i) {
    const Exchange e = completed(i % 3 ? "/x" : "/y", i % 5 ? 200 : 500, 100.0 + i, 200.0 + i,
                                 1'000'000'000 + i * 1'000'000);
    (i % 2 ? a : b).on_exchange(e);
    all.on_exchange(e);
  }
  RouteStore merged = make_store();
  merged.merge_from(a);
  merged.merge_from(b);
  const auto got = snapshot(merged), want = snapshot(all);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [key, w] : want) {
    const RouteStats& g = got.at(key);
    EXPECT_EQ(g.count, w.count) << key;
    EXPECT_EQ(g.errors, w.errors) << key;
    EXPECT_EQ(g.status, w.status) << key;
    EXPECT_EQ(g.response_bytes, w.response_bytes) << key;
    EXPECT_EQ(g.first_seen_ms, w.first_seen_ms) << key;
    EXPECT_EQ(g.last.started_ms, w.last.started_ms) << key;
    for (double q : {0.0, 0.5, 0.9, 0.99, 1.0}) {
      EXPECT_EQ(g.latency.quantile(q), w.latency.quantile(q)) << key;
      EXPECT_EQ(g.total_time.quantile(q), w.total_time.quantile(q)) << key;
    }
  }
}

TEST(RouteStore, ClearKeepsKeysSoARecycledStoreDoesNotAllocate) {
  RouteStore store = make_store();
  store.on_exchange(completed("/api/orders", 200));
  store.on_exchange(failed("/api/orders", ExchangeOutcome::kResetBeforeResponse));
  EXPECT_TRUE(store.has_counts());
  store.clear_counts();
  EXPECT_FALSE(store.has_counts());
  EXPECT_TRUE(store.snapshot().routes.empty()) << "cleared entries are not reported";
  const Exchange e = completed("/api/orders", 200);
  const uint64_t before = allocations();
  for (int i = 0; i < 100; ++i) store.on_exchange(e);
  EXPECT_EQ(allocations() - before, 0u);
  EXPECT_EQ(snapshot(store).at("0 GET /api/orders").count, 100u);
  EXPECT_EQ(snapshot(store).at("0 GET /api/orders").status.at(0), 0u);
}

TEST(RouteStore, AClearDropsTheRoutesIdleSinceThePreviousClear) {
  RouteStore store = make_store();
  store.on_exchange(completed("/hot", 200));
  store.on_exchange(completed("/once", 200));
  auto entries = [&] {
    size_t n = 0;
    store.for_each([&](const RouteStats&) { ++n; });
    return n;
  };
  store.clear_counts();
  EXPECT_EQ(entries(), 2u) << "both counted since the previous clear: both kept";
  store.on_exchange(completed("/hot", 200));
  store.clear_counts();
  EXPECT_EQ(entries(), 1u) << "/once was idle for a whole hand-over: given back";
  const uint64_t before = allocations();
  store.on_exchange(completed("/hot", 200));
  EXPECT_EQ(allocations() - before, 0u) << "the route being served keeps its allocations";
  store.on_exchange(completed("/once", 200));
  EXPECT_GT(allocations() - before, 0u);
  EXPECT_EQ(snapshot(store).at("0 GET /once").count, 1u);
}

TEST(RouteStore, MergingPastMaxRoutesFoldsIntoOverflowWithoutLosingCounts) {
  RouteStore a = make_store(3), b = make_store(3);
  for (const char* p : {"/a", "/b", "/c"}) a.on_exchange(completed(p, 200));
  for (const char* p : {"/d", "/e"}) b.on_exchange(completed(p, 200));
  RouteStore merged = make_store(3);
  merged.merge_from(a);
  merged.merge_from(b);
  uint64_t total = 0;
  merged.for_each([&](const RouteStats& s) { total += s.count; });
  EXPECT_EQ(total, 5u);
  EXPECT_EQ(merged.overflowed_requests(), 2u);
  EXPECT_EQ(merged.size(), 4u);  // three routes and the overflow entry
}

}  // namespace
}  // namespace netprof
