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

inline void add_pod_grouping(nlohmann::json& report, const ScopeRegistry& registry) {
  const std::map<uint32_t, ScopeInfo> scopes = registry.snapshot();
  // One pod may own two scopes (inbound, outbound): group by UID.
  std::map<std::string, nlohmann::json> pods;
  for (const auto& [scope, info] : scopes) {
    nlohmann::json& pod = pods[info.pod_uid];
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
  if (!report.contains("routes")) return;
  for (nlohmann::json& route : report["routes"]) {
    if (!route.contains("scope")) continue;
    const auto it = scopes.find(route["scope"].get<uint32_t>());
    if (it == scopes.end()) continue;
    const ScopeInfo& info = it->second;
    route["pod"] = {{"name", info.pod_name},
                    {"namespace", info.pod_namespace},
                    {"uid", info.pod_uid},
                    {"qos", info.qos},
                    {"direction", info.direction}};
    nlohmann::json& pod = pods[info.pod_uid];
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
  nlohmann::json list = nlohmann::json::array();
  for (auto& [uid, pod] : pods) list.push_back(std::move(pod));
  report["pods"] = std::move(list);
}

}  // namespace netprof
