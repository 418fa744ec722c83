#include "node/node_agent.h"

#include <set>

#include "relay/relay.h"

namespace netprof {

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct NodeAgent::Pod {
  PodIdentity identity;
  std::string cgroup_dir;
  PodNetwork network;
  uint32_t inbound_scope = 0, outbound_scope = 0;
  std::unique_ptr<Interception> interception;
  std::vector<int> listener_fds;  // owned by the relay once posted
};

NodeAgent::NodeAgent(NodeAgentOptions options, Relay& relay, ScopeRegistry& registry,
                     ScopeExpiry expire)
    : options_(std::move(options)), relay_(relay), registry_(registry), expire_(std::move(expire)) {
  // The node's netns (with hostPID, /proc/1 is the node's init) and netprof's own pod's.
  for (const std::string& path : {options_.host_netns, std::string("/proc/self/ns/net")})
    if (const ino_t inode = namespace_inode(path); inode != 0) skip_netns_.push_back(inode);
}

NodeAgent::~NodeAgent() { detach_all(); }

void NodeAgent::log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

std::pair<uint32_t, uint32_t> NodeAgent::scopes_for(const std::string& uid) {
  if (auto it = scopes_by_uid_.find(uid); it != scopes_by_uid_.end()) return it->second;
  const bool outbound = !options_.intercept.outbound_ports.empty();
  std::pair<uint32_t, uint32_t> scopes{next_scope_, outbound ? next_scope_ + 1 : 0};
  next_scope_ += outbound ? 2 : 1;
  scopes_by_uid_[uid] = scopes;
  return scopes;
}

bool NodeAgent::reconcile(const PodScan& scan) {
  std::lock_guard lock(mu_);
  std::set<std::string> present;
  bool retry_soon = false;
  for (const PodCgroup& cgroup : scan.pods) {
    present.insert(cgroup.name.uid);
    auto it = pods_.find(cgroup.name.uid);
    if (it != pods_.end()) {
      // Still the same network? A recreated sandbox has a new netns; a pod whose processes
      // all exited is on its way out.
      const std::vector<pid_t> pids = pod_processes(cgroup);
      auto network = pod_network(pids, skip_netns_);
      if (network && network->netns_inode == it->second->network.netns_inode) continue;
      detach(cgroup.name.uid, network ? "its network namespace changed" : "no process left", true);
    }
    attach(cgroup, retry_soon);
  }
  std::vector<std::string> gone;
  for (const auto& [uid, pod] : pods_)
    if (present.count(uid) == 0) gone.push_back(uid);
  for (const std::string& uid : gone) detach(uid, "its cgroup is gone", true);
  for (auto it = last_error_.begin(); it != last_error_.end();)
    it = present.count(it->first) ? std::next(it) : last_error_.erase(it);
  expire(wall_clock_ms());
  return retry_soon;
}

void NodeAgent::attach(const PodCgroup& cgroup, bool& retry_soon) {
  const std::string& uid = cgroup.name.uid;
  auto fail = [&](const std::string& error) {
    std::string& last = last_error_[uid];
    if (last != error) log("pod " + uid + ": not attached: " + error);
    last = error;
  };
  if (pods_.size() >= options_.max_pods) return fail("max_pods reached");
  const std::vector<pid_t> pids = pod_processes(cgroup);
  if (pids.empty()) {
    retry_soon = true;  // the runtime creates the cgroup first, then starts the processes
    return;
  }
  auto network = pod_network(pids, skip_netns_);
  if (!network) return fail(network.error());

  auto pod = std::make_unique<Pod>();
  pod->identity = identify_pod(cgroup, pids);
  pod->cgroup_dir = cgroup.dir;
  pod->network = *network;
  std::tie(pod->inbound_scope, pod->outbound_scope) = scopes_for(uid);

  InterceptOptions options = options_.intercept;
  options.netns_path = network->netns_path;
  options.cgroup_path = cgroup.dir;
  options.inbound_scope = pod->inbound_scope;
  options.outbound_scope = pod->outbound_scope;
  auto interception = Interception::start(options);
  if (!interception) return fail(interception.error());
  pod->interception = std::move(*interception);

  const PodIdentity& id = pod->identity;
  auto register_scope = [&](uint32_t scope, const char* direction) {
    registry_.set(scope, ScopeInfo{id.name, id.k8s_namespace, id.uid, id.qos, id.container_ids,
                                   direction, 0});
  };
  if (!options.inbound_ports.empty()) register_scope(pod->inbound_scope, "inbound");
  if (!options.outbound_ports.empty()) register_scope(pod->outbound_scope, "outbound");

  std::vector<ListenerSpec> listeners = pod->interception->take_listeners();
  for (const ListenerSpec& spec : listeners) pod->listener_fds.push_back(spec.fd);
  auto shared = std::make_shared<std::vector<ListenerSpec>>(std::move(listeners));
  relay_.post([&relay = relay_, shared] {
    for (ListenerSpec& spec : *shared) relay.add_listener(std::move(spec));
  });
  last_error_.erase(uid);
  std::string line = "pod " + (id.name.empty() ? std::string("?") : id.name);
  if (!id.k8s_namespace.empty()) line += " (namespace " + id.k8s_namespace + ")";
  line += " uid " + uid + " " + id.qos + ": attached, netns of pid " +
          std::to_string(network->pid) + ", scope " + std::to_string(pod->inbound_scope);
  for (const std::string& note : pod->interception->notes()) line += "; note: " + note;
  log(line);
  pods_[uid] = std::move(pod);
}

void NodeAgent::detach(const std::string& uid, const char* why, bool relay_running) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  std::unique_ptr<Pod> pod = std::move(it->second);
  pods_.erase(it);
  // Links first: from now on the pod's new connections go straight to the app. The
  // listeners close on the loop thread; connections already relayed carry on.
  pod->interception.reset();
  if (relay_running)
    relay_.post([&relay = relay_, fds = pod->listener_fds] {
      for (int fd : fds) relay.remove_listener(fd);
    });
  const int64_t now = wall_clock_ms();
  registry_.mark_gone(pod->inbound_scope, now);
  if (pod->outbound_scope != 0) registry_.mark_gone(pod->outbound_scope, now);
  log("pod " + pod->identity.name + " uid " + uid + ": detached (" + why + ")");
}

void NodeAgent::expire(int64_t now_ms) {
  for (uint32_t scope : registry_.expired(now_ms, options_.expire_after.count())) {
    if (expire_) expire_(scope);
    registry_.erase(scope);
    for (auto it = scopes_by_uid_.begin(); it != scopes_by_uid_.end(); ++it) {
      if (it->second.first != scope && it->second.second != scope) continue;
      // Both directions expire together (marked gone at the same time).
      if (pods_.count(it->first) == 0) scopes_by_uid_.erase(it);
      break;
    }
  }
}

void NodeAgent::detach_all() {
  std::lock_guard lock(mu_);
  std::vector<std::string> uids;
  for (const auto& [uid, pod] : pods_) uids.push_back(uid);
  for (const std::string& uid : uids) detach(uid, "netprof is stopping", false);
}

std::vector<AttachedPodView> NodeAgent::attached() const {
  std::lock_guard lock(mu_);
  std::vector<AttachedPodView> out;
  for (const auto& [uid, pod] : pods_)
    out.push_back(AttachedPodView{pod->identity, pod->cgroup_dir, pod->network.netns_inode,
                                  pod->inbound_scope, pod->outbound_scope,
                                  pod->interception->link_ids()});
  return out;
}

}  // namespace netprof
