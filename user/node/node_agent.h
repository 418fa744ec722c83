// Node mode's bookkeeping: one loaded BPF object for the node (InterceptNode, loaded at the
// first attach and kept), one Interception per pod on it, its relay listeners and its scopes.
// reconcile() brings the attached set in line with a scan of the cgroup tree: new pods are
// attached (listeners posted to the relay's loop), gone pods detached (links dropped at once,
// listeners removed on the loop) and marked gone in the ScopeRegistry; stats of pods gone
// for longer than expire_after are dropped. Runs on the watcher thread; detach_all() after the
// watcher has stopped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "intercept/interception.h"
#include "node/pod_identity.h"
#include "node/pod_scan.h"
#include "stats/scope_registry.h"

namespace netprof {

class RelayGroup;

struct NodeAgentOptions {
  // Ports, families, sk_msg and map sizes; netns/cgroup/scopes are per pod. The pods map is
  // sized max_pods whatever intercept.map_sizes.pods says.
  InterceptOptions intercept;
  size_t max_pods = 256;
  // The node's network namespace: pods in it (hostNetwork) are never intercepted.
  std::string host_netns = "/proc/1/ns/net";
  // The node's hostname, which never names a pod. "" = read from the UTS namespace next to
  // host_netns (/proc/1/ns/uts for /proc/1/ns/net).
  std::string node_hostname;
  // The kubelet's pod log directories (<namespace>_<name>_<uid>): the first identity source.
  std::string pod_logs_dir = "/var/log/pods";
  std::chrono::milliseconds expire_after{300'000};
  std::function<void(const std::string&)> log;  // one line per event; may be empty
};

// Where a gone pod's per-scope state lives besides the registry (stats, metric series).
using ScopeExpiry = std::function<void(uint32_t scope)>;

struct AttachedPodView {
  PodIdentity identity;
  std::string cgroup_dir;
  ino_t netns_inode = 0;
  uint32_t inbound_scope = 0, outbound_scope = 0;
  std::vector<uint32_t> link_ids;
};

class NodeAgent {
 public:
  static constexpr uint32_t kFirstScope = 16;  // below: the scopes proxy and attach use

  NodeAgent(NodeAgentOptions options, RelayGroup& relay, ScopeRegistry& registry, ScopeExpiry expire);
  ~NodeAgent();  // detach_all()
  NodeAgent(const NodeAgent&) = delete;
  NodeAgent& operator=(const NodeAgent&) = delete;

  // Returns a delay when some pod waits for something that usually comes soon (processes
  // joining its cgroup, the runtime's init exec'ing the app, a name): the caller should
  // rescan within it. Delays back off per pod (kFirstRetry doubling up to kLastRetry), then
  // stop: a cgroup the runtime left empty is only looked at again by the regular rescan.
  static constexpr std::chrono::milliseconds kFirstRetry{500};
  static constexpr std::chrono::milliseconds kLastRetry{8000};
  // How long a pod's processes must stay in the node's netns before it counts as hostNetwork.
  static constexpr std::chrono::milliseconds kHostNetworkSettle{3000};
  std::optional<std::chrono::milliseconds> reconcile(const PodScan& scan);
  // Drops the stats of pods gone for longer than expire_after.
  void expire(int64_t now_ms);
  // Detaches every pod once the relay has stopped (it closed the listeners itself).
  void detach_all();

  std::vector<AttachedPodView> attached() const;

  // For the overload guard (relay/overload_guard.h), which knows a pod by its inbound scope.
  // The pod whose traffic `scope` is (inbound or outbound); nullopt for no attached pod's.
  std::optional<uint32_t> pod_of_scope(uint32_t scope) const;
  // Suspends (on = false) or resumes the pod's interception (Interception::suspend); "" when
  // done, else why not.
  std::string set_intercepting(uint32_t pod, bool on);
  // Every attached pod: its key (inbound scope) and "namespace/name" ("name", or its UID,
  // while not known). Cheap: no syscall.
  std::vector<std::pair<uint32_t, std::string>> pod_labels() const;
  // The node's loaded BPF object (null before the first attach).
  std::shared_ptr<const InterceptNode> intercept_node() const;

 private:
  struct Pod;
  struct Retry {
    std::chrono::milliseconds delay{0};
    std::chrono::steady_clock::time_point next{};
    std::vector<std::string> container_dirs;  // when they change, the backoff starts again
  };
  // True when the pod waits for something that comes soon (see reconcile()).
  bool attach(const PodCgroup& cgroup, const KubeletPods& kubelet);
  // Re-reads the identity of a pod the kubelet's record has not named; updates the registry
  // if it changed. True while it is not final.
  bool reidentify(Pod& pod, const PodCgroup& cgroup, const KubeletPods& kubelet);
  void register_scopes(const Pod& pod);
  // Steps the backoff of a waiting pod; false once its retries are used up.
  bool wait_for(const PodCgroup& cgroup);
  KubeletPods kubelet_pods();
  void detach(const std::string& uid, const char* why, bool relay_running);
  void log(const std::string& line) const;
  Expected<std::shared_ptr<InterceptNode>> load_node();
  std::pair<uint32_t, uint32_t> scopes_for(const std::string& uid);

  NodeAgentOptions options_;
  RelayGroup& relay_;
  ScopeRegistry& registry_;
  ScopeExpiry expire_;
  std::vector<ino_t> skip_netns_;  // the node's and netprof's own
  std::shared_ptr<InterceptNode> node_;  // loaded once, at the first pod
  std::string node_error_;               // the last load failure, logged once
  mutable std::mutex mu_;          // reconcile() on the watcher thread, attached() from anywhere
  std::map<std::string, std::unique_ptr<Pod>> pods_;  // by UID
  // A pod keeps its scopes while its stats live, so a pod that comes back (sandbox
  // recreated, processes restarted) goes on counting in the same entries.
  std::map<std::string, std::pair<uint32_t, uint32_t>> scopes_by_uid_;
  std::map<std::string, std::string> last_error_;  // by UID: log each distinct failure once
  std::map<std::string, Retry> retry_;             // by UID: pods waiting, with their backoff
  // By UID: when the pod was first seen with its processes in the node's netns.
  std::map<std::string, std::chrono::steady_clock::time_point> in_node_netns_since_;
  std::set<std::string> notes_logged_;             // interception notes are the same for every pod
  std::string kubelet_error_;                      // last failure to list pod_logs_dir, logged once
  uint32_t next_scope_ = kFirstScope;
};

}  // namespace netprof
