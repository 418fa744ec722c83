// Node mode's per-pod view of a report. Each route whose scope belongs to a pod gets a "pod"
// object (name, namespace, uid, qos, direction), and the report gets a "pods" array: every
// registered pod with its containers, which sources named it (name_source, namespace_source:
// "kubelet", "hostname", "service-account" or ""), whether it is gone, its totals and its
// routes (method, route, direction, count, errors; the full figures stay in "routes"). Only
// fields are added: the "routes" contract is unchanged, and without a registry nothing
// changes at all.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "stats/scope_registry.h"

namespace netprof {

// Annotates routes one at a time (so a caller may write each route out and drop it) and
// keeps each pod's totals for the "pods" array.
class PodGrouping {
 public:
  explicit PodGrouping(const ScopeRegistry& registry) : scopes_(registry.snapshot()) {
    // One pod may own two scopes (inbound, outbound): group by UID.
    for (const auto& [scope, info] : scopes_) {
      nlohmann::json& pod = pods_[info.pod_uid];
      if (pod.is_null()) {
        pod = {{"name", info.pod_name},
               {"namespace", info.pod_namespace},
               {"uid", info.pod_uid},
               {"qos", info.qos},
               {"containers", info.container_ids},
               {"gone_at_ms", info.gone_at_ms},
               {"name_source", info.name_source},
               {"namespace_source", info.namespace_source},
               {"scopes", nlohmann::json::array()},
               {"requests", 0},
               {"errors", 0},
               {"routes", nlohmann::json::array()}};
      }
      pod["scopes"].push_back(scope);
    }
  }

  // Adds "pod" to a route of a registered scope and counts it in that pod.
  void annotate(nlohmann::json& route) {
    if (!route.contains("scope")) return;
    const auto it = scopes_.find(route["scope"].get<uint32_t>());
    if (it == scopes_.end()) return;
    const ScopeInfo& info = it->second;
    route["pod"] = {{"name", info.pod_name},
                    {"namespace", info.pod_namespace},
                    {"uid", info.pod_uid},
                    {"qos", info.qos},
                    {"direction", info.direction}};
    nlohmann::json& pod = pods_[info.pod_uid];
    const uint64_t count = route.value("count", uint64_t{0});
    const uint64_t errors = route.value("errors", uint64_t{0});
    pod["requests"] = pod["requests"].get<uint64_t>() + count;
    pod["errors"] = pod["errors"].get<uint64_t>() + errors;
    pod["routes"].push_back({{"method", route.value("method", "")},
                             {"route", route.value("route", "")},
                             {"direction", info.direction},
                             {"count", count},
                             {"errors", errors}});
  }

  // The "pods" array, once every route was annotated.
  nlohmann::json take_pods() {
    nlohmann::json list = nlohmann::json::array();
    for (auto& [uid, pod] : pods_) list.push_back(std::move(pod));
    pods_.clear();
    return list;
  }

 private:
  std::map<uint32_t, ScopeInfo> scopes_;
  std::map<std::string, nlohmann::json> pods_;
};

inline void add_pod_grouping(nlohmann::json& report, const ScopeRegistry& registry) {
  PodGrouping grouping(registry);
  if (!report.contains("routes")) return;
  for (nlohmann::json& route : report["routes"]) grouping.annotate(route);
  report["pods"] = grouping.take_pods();
}

}  // namespace netprof
