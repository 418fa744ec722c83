// Who a scope's traffic belongs to. The relay stamps each exchange with its listener's scope;
// node mode gives every pod (and direction) a scope of its own and registers the pod here, so
// that the report and the metrics can name the pod. Scopes nobody registered (proxy, attach)
// stay anonymous. Thread-safe; header-only so that stats needs no new source file.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace netprof {

struct ScopeInfo {
  std::string pod_name;       // the pod's hostname
  std::string pod_namespace;  // "" when unknown
  std::string pod_uid;
  std::string qos;  // "Guaranteed", "Burstable", "BestEffort"
  std::vector<std::string> container_ids;
  std::string direction;   // "inbound" or "outbound"
  int64_t gone_at_ms = 0;  // epoch ms the pod went away; 0 while it runs
  // Which source named the pod and gave its namespace: "kubelet" (/var/log/pods),
  // "hostname", "service-account", or "" (not known yet).
  std::string name_source;
  std::string namespace_source;
};

class ScopeRegistry {
 public:
  void set(uint32_t scope, ScopeInfo info) {
    std::lock_guard lock(mu_);
    scopes_[scope] = std::move(info);
    version_.fetch_add(1, std::memory_order_release);
  }
  // The pod is gone; its stats stay visible until expired() lists the scope.
  void mark_gone(uint32_t scope, int64_t now_ms) {
    std::lock_guard lock(mu_);
    if (auto it = scopes_.find(scope); it != scopes_.end() && it->second.gone_at_ms == 0)
      it->second.gone_at_ms = now_ms;
    version_.fetch_add(1, std::memory_order_release);
  }
  void erase(uint32_t scope) {
    std::lock_guard lock(mu_);
    scopes_.erase(scope);
    version_.fetch_add(1, std::memory_order_release);
  }
  // Changes with every set/mark_gone/erase: a cached rendering that shows pods is stale
  // when this moved, even if no exchange came in since (a pod going away is news too).
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  std::optional<ScopeInfo> find(uint32_t scope) const {
    std::lock_guard lock(mu_);
    auto it = scopes_.find(scope);
    if (it == scopes_.end()) return std::nullopt;
    return it->second;
  }
  std::map<uint32_t, ScopeInfo> snapshot() const {
    std::lock_guard lock(mu_);
    return scopes_;
  }
  // Scopes of pods gone for at least `ttl_ms` (their series should now be dropped).
  std::vector<uint32_t> expired(int64_t now_ms, int64_t ttl_ms) const {
    std::lock_guard lock(mu_);
    std::vector<uint32_t> out;
    for (const auto& [scope, info] : scopes_)
      if (info.gone_at_ms != 0 && now_ms - info.gone_at_ms >= ttl_ms) out.push_back(scope);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<uint32_t, ScopeInfo> scopes_;
  std::atomic<uint64_t> version_{0};
};

}  // namespace netprof
