// Pod identity in the outputs: the report's per-pod grouping and the Prometheus pod labels,
// and a gone pod's series dropped by scope.
#include <gtest/gtest.h>

#include "export/http_metrics.h"
#include "export/prometheus_http.h"
#include "report/pod_grouping.h"
#include "stats/scope_registry.h"

namespace netprof {
namespace {

using nlohmann::json;

ScopeInfo pod(const char* name, const char* uid) {
  ScopeInfo info;
  info.pod_name = name;
  info.pod_namespace = "shop";
  info.pod_uid = uid;
  info.qos = "Burstable";
  info.container_ids = {"abc"};
  info.direction = "inbound";
  info.name_source = "kubelet";
  info.namespace_source = "kubelet";
  return info;
}

TEST(PodGrouping, RoutesGetTheirPodAndPodsListTheirRoutes) {
  ScopeRegistry registry;
  registry.set(16, pod("web-1", "u1"));
  registry.set(17, pod("api-1", "u2"));
  auto route = [](uint32_t scope, const char* method, const char* path, int count, int errors) {
    return json{{"scope", scope},
                {"method", method},
                {"route", path},
                {"count", count},
                {"errors", errors}};
  };
  json report = {
      {"routes", json::array({route(16, "GET", "/a", 3, 1), route(17, "POST", "/b", 2, 0),
                              route(16, "GET", "/c", 4, 0), route(0, "GET", "/anon", 1, 0)})}};
  const json before = report["routes"];
  add_pod_grouping(report, registry);

  ASSERT_EQ(report["routes"].size(), before.size());
  EXPECT_EQ(report["routes"][0]["pod"]["name"], "web-1");
  EXPECT_EQ(report["routes"][1]["pod"]["uid"], "u2");
  EXPECT_EQ(report["routes"][1]["pod"]["namespace"], "shop");
  EXPECT_FALSE(report["routes"][3].contains("pod"));  // unregistered scope stays anonymous
  for (size_t i = 0; i < before.size(); ++i)          // nothing of the routes contract changed
    for (const auto& [key, value] : before[i].items()) EXPECT_EQ(report["routes"][i][key], value);

  ASSERT_EQ(report["pods"].size(), 2u);
  const json& web = report["pods"][0]["uid"] == "u1" ? report["pods"][0] : report["pods"][1];
  EXPECT_EQ(web["requests"], 7);
  EXPECT_EQ(web["errors"], 1);
  EXPECT_EQ(web["routes"].size(), 2u);
  EXPECT_EQ(web["qos"], "Burstable");
  EXPECT_EQ(web["name_source"], "kubelet");  // which source named the pod
  EXPECT_EQ(web["namespace_source"], "kubelet");
  EXPECT_EQ(web["gone_at_ms"], 0);
}

TEST(PodGrouping, GonePodStillListedWithItsTime) {
  ScopeRegistry registry;
  registry.set(20, pod("old", "u9"));
  registry.mark_gone(20, 1234);
  json report = {{"routes", json::array()}};
  add_pod_grouping(report, registry);
  ASSERT_EQ(report["pods"].size(), 1u);
  EXPECT_EQ(report["pods"][0]["gone_at_ms"], 1234);
}

Exchange exchange(uint32_t scope) {
  Exchange e;
  e.scope = scope;
  e.method = 1;  // GET
  e.status = 200;
  e.response_headers_done = 1;
  e.response_done = 1;
  return e;
}

TEST(PodMetrics, SeriesCarryPodLabelsAndExpireByScope) {
  ScopeRegistry registry;
  registry.set(16, pod("web-1", "u1"));
  HttpMetrics metrics;
  metrics.on_routed_exchange(exchange(16), "/a");
  metrics.on_routed_exchange(exchange(17), "/a");  // another pod, same route: its own series
  metrics.on_routed_exchange(exchange(0), "/a");
  EXPECT_EQ(metrics.series_count(), 3u);

  std::string text;
  PrometheusWriter writer(text);
  write_http_metrics(writer, metrics.snapshot(), metrics.options(), &registry);
  EXPECT_NE(text.find("k8s_pod_name=\"web-1\",k8s_pod_uid=\"u1\",k8s_namespace_name=\"shop\""),
            std::string::npos)
      << text;

  EXPECT_EQ(metrics.erase_scope(16), 1u);
  EXPECT_EQ(metrics.series_count(), 2u);
  std::string after;
  PrometheusWriter writer_after(after);
  write_http_metrics(writer_after, metrics.snapshot(), metrics.options(), &registry);
  EXPECT_EQ(after.find("web-1"), std::string::npos);
}

}  // namespace
}  // namespace netprof
