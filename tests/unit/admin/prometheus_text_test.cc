#include "export/prometheus_text.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace netprof
