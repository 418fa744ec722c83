#include "export/prometheus_text.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "export/otlp_json.h"

namespace netprof {
namespace {

TEST(PrometheusText, EscapesLabelValuesAndHelp) {
  std::string out;
  PrometheusWriter w(out);
  w.family("m", "counter", "back\\slash\nnewline");
  w.sample("m", {{"route", "/a\"b\\c\nd"}}, 3);
  EXPECT_EQ(out,
            "# HELP m back\\\\slash\\nnewline\n# TYPE m counter\n"
            "m{route=\"/a\\\"b\\\\c\\nd\"} 3\n");
}

TEST(PrometheusText, OpenMetricsNamesCounterFamiliesWithoutTotalAndEndsWithEof) {
  std::string out;
  PrometheusWriter w(out, ExpositionFormat::kOpenMetrics);
  w.family("m_total", "counter", "say \"hi\"");
  w.sample("m_total", {}, 3);
  w.finish();
  EXPECT_EQ(out, "# HELP m say \\\"hi\\\"\n# TYPE m counter\nm_total 3\n# EOF\n");
}

TEST(PrometheusText, ExemplarsOnlyInOpenMetricsAndOnlyOnBucketsThatHaveOne) {
  const std::vector<double> bounds = {0.1, 1};
  const std::vector<uint64_t> counts = {1, 0, 2};
  std::vector<Exemplar> exemplars(2);  // sparse: buckets 0 and 2 have one, bucket 1 none
  exemplars[0].set(0.05, 1700000000123, true, "4bf92f3577b34da6a3ce929d0e0e4736");
  exemplars[0].bucket = 0;
  exemplars[1].set(2.5, 1700000001000, false, "42-3");
  exemplars[1].bucket = 2;
  const std::vector<Label> labels = {{"route", "/a"}};
  std::string om;
  PrometheusWriter(om, ExpositionFormat::kOpenMetrics)
      .histogram("d", labels, bounds, counts, 5.05, exemplars);
  EXPECT_EQ(om,
            "d_bucket{route=\"/a\",le=\"0.1\"} 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} "
            "0.05 1700000000.123\n"
            "d_bucket{route=\"/a\",le=\"1\"} 1\n"
            "d_bucket{route=\"/a\",le=\"+Inf\"} 3 # {request_id=\"42-3\"} 2.5 1700000001.000\n"
            "d_sum{route=\"/a\"} 5.05\nd_count{route=\"/a\"} 3\n");
  std::string text;
  PrometheusWriter(text).histogram("d", labels, bounds, counts, 5.05, exemplars);
  EXPECT_EQ(text.find('#'), std::string::npos);
}

TEST(PrometheusText, LabelValuesAreValidUtf8WhateverTheyWereGiven) {
  std::string out;
  PrometheusWriter w(out);
  w.sample("m", {{"pod", "a\xff\xc3\xa9"}}, 1);
  EXPECT_EQ(out, "m{pod=\"a%FF\xc3\xa9\"} 1\n");
}

TEST(PrometheusText, HistogramIsCumulativeWithInfSumAndCount) {
  std::string out;
  PrometheusWriter w(out);
  const std::vector<double> bounds = {0.1, 1};
  const std::vector<uint64_t> counts = {2, 0, 3};
  const std::vector<Label> labels = {{"a", "b"}};
  w.histogram("h", labels, bounds, counts, 7.5);
  EXPECT_EQ(out,
            "h_bucket{a=\"b\",le=\"0.1\"} 2\nh_bucket{a=\"b\",le=\"1\"} 2\n"
            "h_bucket{a=\"b\",le=\"+Inf\"} 5\nh_sum{a=\"b\"} 7.5\nh_count{a=\"b\"} 5\n");
}

TEST(PrometheusText, NumbersReadBackExactly) {
  EXPECT_EQ(format_double(0.005), "0.005");
  EXPECT_EQ(format_double(100000), "100000");
  EXPECT_EQ(format_double(2.5), "2.5");
  EXPECT_EQ(format_double(1.0 / 0.0), "+Inf");
  EXPECT_EQ(std::stod(format_double(0.1 + 0.2)), 0.1 + 0.2);
}

TEST(OtlpUrl, AddsTheDefaultPathOnlyToABaseEndpoint) {
  EXPECT_EQ(otlp_metrics_url("http://collector:4318"), "http://collector:4318/v1/metrics");
  EXPECT_EQ(otlp_metrics_url("http://collector:4318/"), "http://collector:4318/v1/metrics");
  EXPECT_EQ(otlp_metrics_url("http://c:4318/custom/path"), "http://c:4318/custom/path");
}

// A series that counted one exchange in every histogram; exemplars as given.
HttpSeries otlp_series(std::string route, bool grpc, std::vector<Exemplar> exemplars) {
  const HttpMetricsOptions options;
  HttpSeries s;
  s.method = "POST";
  s.route = std::move(route);
  s.status = 200;
  s.grpc = grpc;
  s.grpc_status = grpc ? 0 : -1;
  s.requests = 1;
  s.duration_s.counts.assign(options.duration_buckets_s.size() + 1, 0);
  s.duration_s.record(options.duration_buckets_s, 0.003);
  for (BucketCounts* b : {&s.request_body_bytes, &s.response_body_bytes}) {
    b->counts.assign(options.size_buckets_bytes.size() + 1, 0);
    b->record(options.size_buckets_bytes, 10);
  }
  s.duration_exemplars = std::move(exemplars);
  return s;
}

Exemplar otlp_exemplar(uint16_t bucket, bool trace, std::string_view id) {
  Exemplar x;
  x.set(0.003, 1700000000123, trace, id);
  x.bucket = bucket;
  return x;
}

// The data points of `metric`, by http.route or rpc.service (the second attribute).
std::map<std::string, nlohmann::json> otlp_points(const nlohmann::json& request,
                                                  std::string_view metric) {
  std::map<std::string, nlohmann::json> points;
  for (const auto& m : request["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]) {
    if (m["name"] != metric) continue;
    for (const auto& p : m["histogram"]["dataPoints"]) {
      points[p["attributes"][1]["value"]["stringValue"].get<std::string>()] = p;
    }
  }
  return points;
}

TEST(OtlpJson, DurationPointsCarryExemplarsTraceIdsAsHexOtherIdsAsAttributes) {
  HttpMetricsSnapshot snap;
  snap.series.push_back(otlp_series(
      "/traced", false,
      {otlp_exemplar(0, true, "4BF92F3577B34DA6A3CE929D0E0E4736"),  // 128-bit B3, upper case
       otlp_exemplar(3, true, "a3ce929d0e0e4736"),                  // 64-bit B3
       otlp_exemplar(5, true, "req-7f3a"),                          // an X-Request-Id
       otlp_exemplar(14, false, "42-3")}));                         // netprof's request id
  snap.series.push_back(otlp_series("/plain", false, {}));
  snap.series.push_back(otlp_series("/demo.v1.Users/Get", true, {otlp_exemplar(0, false, "7-1")}));
  const nlohmann::json request =
      nlohmann::json::parse(build_otlp_metrics(snap, HttpMetricsOptions{}, OtlpResource{}, 1));

  auto http = otlp_points(request, "http.server.request.duration");
  const nlohmann::json& x = http["/traced"]["exemplars"];
  ASSERT_EQ(x.size(), 4u) << x.dump();
  EXPECT_EQ(x[0]["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(x[1]["traceId"], "0000000000000000a3ce929d0e0e4736");
  for (int i : {0, 1}) {
    EXPECT_FALSE(x[i].contains("spanId")) << "optional, and the relay has none";
    EXPECT_FALSE(x[i].contains("filteredAttributes"));
  }
  EXPECT_EQ(x[2]["filteredAttributes"],
            nlohmann::json::parse(R"([{"key":"trace_id","value":{"stringValue":"req-7f3a"}}])"));
  EXPECT_EQ(x[3]["filteredAttributes"], nlohmann::json::parse(R"(
      [{"key":"netprof.request_id","value":{"stringValue":"42-3"}}])"));
  for (const auto& e : x) {
    EXPECT_EQ(e["timeUnixNano"], "1700000000123000000") << "fixed64: a decimal string";
    EXPECT_EQ(e["asDouble"], 0.003);
  }
  EXPECT_FALSE(x[2].contains("traceId"));
  EXPECT_FALSE(http["/plain"].contains("exemplars")) << http["/plain"].dump();

  const auto rpc = otlp_points(request, "rpc.server.call.duration");
  ASSERT_EQ(rpc.count("demo.v1.Users"), 1u);
  EXPECT_EQ(
      rpc.at("demo.v1.Users")["exemplars"][0]["filteredAttributes"][0]["value"]["stringValue"],
      "7-1");

  for (const char* sizes : {"http.server.request.body.size", "http.server.response.body.size"}) {
    const auto points = otlp_points(request, sizes);
    ASSERT_EQ(points.size(), 3u) << sizes;
    for (const auto& [route, p] : points) EXPECT_FALSE(p.contains("exemplars")) << sizes << route;
  }
}

}  // namespace
}  // namespace netprof
