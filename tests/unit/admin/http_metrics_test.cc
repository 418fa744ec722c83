#include "export/http_metrics.h"

#include <gtest/gtest.h>

#include "export/http_client.h"

namespace netprof {
namespace {

Exchange answered(uint16_t status, double seconds, uint64_t body = 0) {
  Exchange e;
  e.method = 1;  // GET
  e.path = "/x";
  e.status = status;
  e.request_headers_done = 1'000'000'000;
  e.response_headers_done = e.request_headers_done + 1000;
  e.response_done = e.request_headers_done + static_cast<MonoNanos>(seconds * 1e9);
  e.response_body_bytes = body;
  return e;
}

TEST(HttpMetrics, BucketsAreInclusiveUpperBounds) {
  HttpMetricsOptions o;
  o.duration_buckets_s = {0.1, 1};
  HttpMetrics m(o);
  m.on_routed_exchange(answered(200, 0.1), "/a");   // exactly on a bound: that bucket
  m.on_routed_exchange(answered(200, 0.5), "/a");
  m.on_routed_exchange(answered(200, 3), "/a");     // above every bound
  const auto snap = m.snapshot();
  ASSERT_EQ(snap.series.size(), 1u);
  const HttpSeries& s = snap.series[0];
  EXPECT_EQ(s.method, "GET");
  EXPECT_EQ(s.duration_s.counts, (std::vector<uint64_t>{1, 1, 1}));
  EXPECT_EQ(s.duration_s.count, 3u);
  EXPECT_DOUBLE_EQ(s.duration_s.max, 3);
}

TEST(HttpMetrics, ExemplarPerBucketPrefersATraceIdAndSurvivesTheMerge) {
  HttpMetricsOptions o;
  o.duration_buckets_s = {0.1, 1};
  HttpMetrics worker(o), total(o);
  Exchange plain = answered(200, 0.05);
  plain.connection_id = 42;
  plain.sequence = 3;
  worker.on_routed_exchange(plain, "/a");
  worker.on_routed_exchange(answered(200, 0.06), "/a");  // no id at all: not an exemplar
  Exchange traced = answered(200, 0.07);
  traced.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  worker.on_routed_exchange(traced, "/a");  // a trace id beats the request id
  Exchange slow = answered(200, 0.5);
  slow.connection_id = 7;
  slow.sequence = 1;
  worker.on_routed_exchange(slow, "/a");
  total.merge_from(worker);
  worker.clear_counts();
  const auto snap = total.snapshot();
  ASSERT_EQ(snap.series.size(), 1u);
  const auto& x = snap.series[0].duration_exemplars;
  ASSERT_EQ(x.size(), 2u);  // only the buckets that have one: the +Inf bucket has none
  EXPECT_EQ(x[0].bucket, 0);
  EXPECT_EQ(x[1].bucket, 1);
  EXPECT_TRUE(x[0].trace);
  EXPECT_EQ(x[0].id_view(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_DOUBLE_EQ(x[0].value, 0.07);
  EXPECT_FALSE(x[1].trace);
  EXPECT_EQ(x[1].id_view(), "7-1");
  // A later untraced exchange does not push the traced exemplar out.
  worker.on_routed_exchange(plain, "/a");
  total.merge_from(worker);
  EXPECT_EQ(total.snapshot().series[0].duration_exemplars[0].id_view(),
            "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(HttpMetrics, SeriesSplitByStatusAndFailure) {
  HttpMetrics m;
  m.on_routed_exchange(answered(200, 0.01), "/a");
  m.on_routed_exchange(answered(500, 0.01), "/a");
  Exchange reset;
  reset.path = "/a";
  reset.outcome = ExchangeOutcome::kResetBeforeResponse;
  m.on_routed_exchange(reset, "/a");
  const auto snap = m.snapshot();
  ASSERT_EQ(snap.series.size(), 3u);
  int unanswered = 0;
  for (const auto& s : snap.series) {
    EXPECT_EQ(s.requests, 1u);
    if (s.status == 0) {
      ++unanswered;
      EXPECT_EQ(s.error_type, "connection_reset");
      EXPECT_EQ(s.duration_s.count, 0u);  // no response, no duration
    }
  }
  EXPECT_EQ(unanswered, 1);
}

TEST(HttpMetrics, SeriesCapSendsNewRoutesToOverflowAndCountsThem) {
  HttpMetricsOptions o;
  o.max_series = 2;
  HttpMetrics m(o);
  m.on_routed_exchange(answered(200, 0.01), "/a");
  m.on_routed_exchange(answered(200, 0.01), "/b");
  m.on_routed_exchange(answered(200, 0.01), "/c");
  m.on_routed_exchange(answered(200, 0.01), "/d");
  m.on_routed_exchange(answered(200, 0.01), "/a");  // known: not overflow
  const auto snap = m.snapshot();
  EXPECT_EQ(snap.overflowed_requests, 2u);
  ASSERT_EQ(snap.series.size(), 3u);
  EXPECT_EQ(snap.series[0].route, "/a");
  EXPECT_EQ(snap.series[0].requests, 2u);
  EXPECT_EQ(snap.series[2].route, "{overflow}");
  EXPECT_EQ(snap.series[2].requests, 2u);
}

TEST(HttpMetrics, RejectsBadBuckets) {
  EXPECT_EQ(check_buckets({0.1, 1}), "");
  EXPECT_NE(check_buckets({}), "");
  EXPECT_NE(check_buckets({1, 1}), "");
  EXPECT_NE(check_buckets({2, 1}), "");
}

TEST(Url, ParsesHostPortAndPath) {
  Url u;
  std::string error;
  ASSERT_TRUE(Url::parse("http://127.0.0.1:4318/v1/metrics", u, error));
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 4318);
  EXPECT_EQ(u.path, "/v1/metrics");
  ASSERT_TRUE(Url::parse("[::1]:9464", u, error));
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.host_header(), "[::1]:9464");
  EXPECT_EQ(u.path, "/");
  EXPECT_FALSE(Url::parse("https://x", u, error));
  EXPECT_NE(error.find("https"), std::string::npos);
  EXPECT_FALSE(Url::parse("http://x:99999", u, error));
}

TEST(HttpMetrics, AClearDropsTheSeriesIdleSinceThePreviousClear) {
  HttpMetrics worker;
  worker.on_routed_exchange(answered(200, 0.01), "/hot");
  worker.on_routed_exchange(answered(200, 0.01), "/once");
  worker.clear_counts();
  EXPECT_EQ(worker.series_count(), 2u);
  worker.on_routed_exchange(answered(200, 0.01), "/hot");
  worker.clear_counts();
  EXPECT_EQ(worker.series_count(), 1u);
  EXPECT_FALSE(worker.has_counts());
  worker.on_routed_exchange(answered(200, 0.01), "/once");
  const auto snap = worker.snapshot();
  ASSERT_EQ(snap.series.size(), 2u);
  EXPECT_EQ(snap.series[1].route, "/once");
  EXPECT_EQ(snap.series[1].requests, 1u);
}

TEST(HttpMetrics, ExemplarsAreKeptOnlyForBucketsThatHaveOneInBucketOrder) {
  HttpMetricsOptions o;
  o.duration_buckets_s = {0.1, 1, 10};
  HttpMetrics worker(o), total(o);
  auto with_id = [](double seconds, uint64_t connection) {
    Exchange e = answered(200, seconds);
    e.connection_id = connection;
    e.sequence = 1;
    return e;
  };
  worker.on_routed_exchange(with_id(20, 1), "/a");    // +Inf bucket (3)
  worker.on_routed_exchange(with_id(0.05, 2), "/a");  // bucket 0
  total.merge_from(worker);
  worker.clear_counts();
  EXPECT_FALSE(worker.has_counts());
  worker.on_routed_exchange(with_id(5, 3), "/a");  // bucket 2, in the next hand-over
  total.merge_from(worker);
  const auto x = total.snapshot().series[0].duration_exemplars;
  ASSERT_EQ(x.size(), 3u);
  EXPECT_EQ(x[0].bucket, 0);
  EXPECT_EQ(x[0].id_view(), "2-1");
  EXPECT_EQ(x[1].bucket, 2);
  EXPECT_EQ(x[1].id_view(), "3-1");
  EXPECT_EQ(x[2].bucket, 3);
  EXPECT_EQ(x[2].id_view(), "1-1");
  // The worker's buffer holds only what came since its last hand-over.
  const auto w = worker.snapshot().series[0].duration_exemplars;
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].bucket, 2);
}

}  // namespace
}  // namespace netprof
