#include "node/node_agent.h"

#include <algorithm>
#include <set>

#include "base/clock.h"
#include "relay/relay_group.h"

namespace netprof {

struct NodeAgent::Pod {
  PodIdentity identity;
  std::string cgroup_dir;
  PodNetwork network;
  uint32_t inbound_scope = 0, outbound_scope = 0;
  std::unique_ptr<Interception> interception;
  std::vector<RelayGroup::ListenerRef> listeners;  // posted to the relay, which owns them
};

NodeAgent::NodeAgent(NodeAgentOptions options, RelayGroup& relay, ScopeRegistry& registry,
                     ScopeExpiry expire)
    : options_(std::move(options)), relay_(relay), registry_(registry), expire_(std::move(expire)) {
  // The node's netns (with hostPID, /proc/1 is the node's init) and netprof's own pod's.
  for (const std::string& path : {options_.host_netns, std::string("/proc/self/ns/net")})
    if (const ino_t inode = namespace_inode(path); inode != 0) skip_netns_.push_back(inode);
  // The node's hostname: what a container's UTS namespace holds until the runtime sets the
  // pod's. Read next to host_netns (/proc/1/ns/uts); unknown is tolerable, since names are
  // read only through the app's own processes anyway.
  const std::string& net = options_.host_netns;
  if (options_.node_hostname.empty() && net.size() > 4 &&
      net.compare(net.size() - 4, 4, "/net") == 0)
    if (auto name = uts_nodename(net.substr(0, net.size() - 4) + "/uts"))
      options_.node_hostname = *name;
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

Expected<std::shared_ptr<InterceptNode>> NodeAgent::load_node() {
  if (node_) return node_;
  InterceptOptions options = options_.intercept;
  options.map_sizes.pods = static_cast<uint32_t>(options_.max_pods);
  auto node = InterceptNode::load(options);
  if (!node) {
    // Every pod would fail the same way: say it once, not once per pod.
    if (node.error() != node_error_)
      log("cannot load the BPF programs for the node: " + node.error());
    node_error_ = node.error();
    return node.take_error();
  }
  node_ = std::move(*node);
  node_error_.clear();
  const MapSizes& sizes = options.map_sizes;
  std::string line = "BPF programs loaded once for the node: maps for " +
                     std::to_string(sizes.pods) + " pods, " + std::to_string(sizes.pending) +
                     " pending connections, " + std::to_string(sizes.local_peers) +
                     " sk_msg sockets; sk_msg " + (node_->skmsg_on() ? "on" : "off");
  for (const std::string& note : node_->notes()) line += "; note: " + note;
  log(line);
  return node_;
}

std::shared_ptr<const InterceptNode> NodeAgent::intercept_node() const {
  std::lock_guard lock(mu_);
  return node_;
}

KubeletPods NodeAgent::kubelet_pods() {
  auto pods = read_kubelet_pods(options_.pod_logs_dir);
  const std::string error = pods ? std::string() : pods.error();
  if (!error.empty() && error != kubelet_error_)
    log("kubelet pod records not used: " + error +
        " (pods are named from their hostname and service-account files; mount the node's "
        "/var/log/pods read-only at pod_logs_dir)");
  kubelet_error_ = error;
  return pods ? std::move(*pods) : KubeletPods{};
}

bool NodeAgent::wait_for(const PodCgroup& cgroup) {
  const auto now = std::chrono::steady_clock::now();
  Retry& retry = retry_[cgroup.name.uid];
  // A container added to the pod (a new directory) starts the backoff again.
  if (retry.container_dirs != cgroup.container_dirs) retry = Retry{{}, {}, cgroup.container_dirs};
  if (now < retry.next) return true;  // rescanned early (another pod, an event): same step
  if (retry.delay.count() == 0) {
    retry.delay = kFirstRetry;
  } else if (retry.delay >= kLastRetry) {
    retry.next = std::chrono::steady_clock::time_point::max();
    return false;
  } else {
    retry.delay *= 2;
  }
  retry.next = now + retry.delay;
  return true;
}

std::optional<std::chrono::milliseconds> NodeAgent::reconcile(const PodScan& scan) {
  std::lock_guard lock(mu_);
  const KubeletPods kubelet = kubelet_pods();  // one directory listing per scan
  std::set<std::string> present;
  std::map<std::string, const PodCgroup*> waiting;
  for (const PodCgroup& cgroup : scan.pods) {
    const std::string& uid = cgroup.name.uid;
    present.insert(uid);
    auto it = pods_.find(uid);
    if (it != pods_.end()) {
      // Still the same network? A recreated sandbox has a new netns; a pod whose processes
      // all exited is on its way out.
      auto network = pod_network(pod_processes(cgroup), skip_netns_);
      if (network && network->netns_inode == it->second->network.netns_inode) {
        Pod& pod = *it->second;
        if (!pod.identity.settled() && reidentify(pod, cgroup, kubelet) &&
            pod.identity.name.empty())
          waiting[uid] = &cgroup;
        continue;
      }
      detach(uid, network ? "its network namespace changed" : "no process left", true);
    }
    if (attach(cgroup, kubelet)) waiting[uid] = &cgroup;
  }
  std::vector<std::string> gone;
  for (const auto& [uid, pod] : pods_)
    if (present.count(uid) == 0) gone.push_back(uid);
  for (const std::string& uid : gone) detach(uid, "its cgroup is gone", true);
  for (auto it = last_error_.begin(); it != last_error_.end();)
    it = present.count(it->first) ? std::next(it) : last_error_.erase(it);
  for (auto it = in_node_netns_since_.begin(); it != in_node_netns_since_.end();)
    it = present.count(it->first) ? std::next(it) : in_node_netns_since_.erase(it);

  // A pod that stops waiting starts again from kFirstRetry the next time it waits.
  for (auto it = retry_.begin(); it != retry_.end();)
    it = waiting.count(it->first) ? std::next(it) : retry_.erase(it);
  std::optional<std::chrono::milliseconds> rescan;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [uid, cgroup] : waiting) {
    if (!wait_for(*cgroup)) {
      const std::string note =
          pods_.count(uid) != 0
              ? "still unnamed (no app process, kubelet record or hostname yet); looking "
                "again at each rescan"
              : "no process has joined its cgroup; looking again at each rescan (a cgroup "
                "the runtime left behind stays empty)";
      std::string& last = last_error_[uid];
      if (last != note) log("pod " + uid + ": " + note);
      last = note;
      continue;
    }
    const auto delay =
        std::chrono::duration_cast<std::chrono::milliseconds>(retry_[uid].next - now);
    const auto bounded = std::max(delay, std::chrono::milliseconds{1});
    rescan = rescan ? std::min(*rescan, bounded) : bounded;
  }
  expire(unix_ms());
  return rescan;
}

void NodeAgent::register_scopes(const Pod& pod) {
  const PodIdentity& id = pod.identity;
  auto register_scope = [&](uint32_t scope, const char* direction) {
    registry_.set(scope, ScopeInfo{id.name, id.k8s_namespace, id.uid, id.qos, id.container_ids,
                                   direction, 0, id.name_source, id.namespace_source});
  };
  if (!options_.intercept.inbound_ports.empty()) register_scope(pod.inbound_scope, "inbound");
  if (!options_.intercept.outbound_ports.empty()) register_scope(pod.outbound_scope, "outbound");
}

namespace {

std::string describe(const PodIdentity& id) {
  std::string text = "pod " + (id.name.empty() ? std::string("?") : id.name);
  if (!id.k8s_namespace.empty()) text += " (namespace " + id.k8s_namespace + ")";
  return text;
}

std::string sources(const PodIdentity& id) {
  if (id.name_source.empty()) return "not named yet";
  std::string text = "named by " + id.name_source;
  if (!id.namespace_source.empty() && id.namespace_source != id.name_source)
    text += ", namespace from " + id.namespace_source;
  return text;
}

}  // namespace

bool NodeAgent::reidentify(Pod& pod, const PodCgroup& cgroup, const KubeletPods& kubelet) {
  PodIdentity fresh = identify_pod(cgroup, pod_processes(cgroup), kubelet, options_.node_hostname);
  // A fallback that finds nothing this time (the app restarting) keeps what was read before.
  if (fresh.name.empty()) {
    fresh.name = pod.identity.name;
    fresh.name_source = pod.identity.name_source;
  }
  if (fresh.k8s_namespace.empty()) {
    fresh.k8s_namespace = pod.identity.k8s_namespace;
    fresh.namespace_source = pod.identity.namespace_source;
  }
  const PodIdentity& old = pod.identity;
  const bool renamed = fresh.name != old.name || fresh.k8s_namespace != old.k8s_namespace ||
                       fresh.name_source != old.name_source ||
                       fresh.namespace_source != old.namespace_source;
  if (renamed || fresh.container_ids != old.container_ids) {
    pod.identity = std::move(fresh);
    register_scopes(pod);
    if (renamed)
      log(describe(pod.identity) + " uid " + pod.identity.uid + ": " + sources(pod.identity));
  }
  return !pod.identity.settled();
}

bool NodeAgent::attach(const PodCgroup& cgroup, const KubeletPods& kubelet) {
  const std::string& uid = cgroup.name.uid;
  auto fail = [&](const std::string& error) {
    std::string& last = last_error_[uid];
    if (last != error) log("pod " + uid + ": not attached: " + error);
    last = error;
    return false;
  };
  if (pods_.size() >= options_.max_pods) return fail("max_pods reached");
  const std::vector<PodProcess> processes = pod_processes(cgroup);
  // The runtime creates the cgroup first, then starts the processes; its init becomes the
  // app at exec. Both pass within a second: the caller retries (wait_for), silently.
  const bool starting = std::all_of(processes.begin(), processes.end(), [](const PodProcess& p) {
    return p.role == ProcessRole::kRuntimeInit;
  });
  if (starting) return true;
  auto network = pod_network(processes, skip_netns_);
  if (!network) return fail(network.error());
  if (network->shares_skipped_netns) {
    // runc's init joins the pod's cgroup before it enters the pod's netns, under a name that
    // is not always recognisable: a pod is taken for hostNetwork only once it has stayed in
    // the node's netns for kHostNetworkSettle (a real runtime under load showed this).
    const auto now = std::chrono::steady_clock::now();
    const auto since = in_node_netns_since_.try_emplace(uid, now).first->second;
    if (now - since < kHostNetworkSettle) return true;
    return fail("shares the node's or netprof's network namespace (hostNetwork?): skipped");
  }
  in_node_netns_since_.erase(uid);

  auto pod = std::make_unique<Pod>();
  pod->identity = identify_pod(cgroup, processes, kubelet, options_.node_hostname);
  pod->cgroup_dir = cgroup.dir;
  pod->network = *network;
  std::tie(pod->inbound_scope, pod->outbound_scope) = scopes_for(uid);

  auto node = load_node();
  if (!node) return false;  // logged once by load_node()
  auto interception = (*node)->attach(
      PodTarget{network->netns_path, cgroup.dir, pod->inbound_scope, pod->outbound_scope});
  if (!interception) return fail(interception.error());
  pod->interception = std::move(*interception);
  register_scopes(*pod);

  std::vector<ListenerSpec> listeners = pod->interception->take_listeners();
  for (const ListenerSpec& spec : listeners)
    pod->listeners.push_back(RelayGroup::ListenerRef{spec.worker, spec.id});
  relay_.post_listeners(std::move(listeners));
  last_error_.erase(uid);
  const PodIdentity& id = pod->identity;
  log(describe(id) + " uid " + uid + " " + id.qos + ": attached, netns of pid " +
      std::to_string(network->pid) + ", scope " + std::to_string(pod->inbound_scope) + ", " +
      sources(id));
  // A pod's notes (e.g. no IPv6 in it) tend to repeat for every pod: each is said once. The
  // node's own (the sk_msg verdict) were logged with the BPF load.
  for (const std::string& note : pod->interception->notes())
    if (notes_logged_.insert(note).second) log("note (applies to every pod): " + note);
  const bool unnamed = id.name.empty();
  pods_[uid] = std::move(pod);
  return unnamed;
}

void NodeAgent::detach(const std::string& uid, const char* why, bool relay_running) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  std::unique_ptr<Pod> pod = std::move(it->second);
  pods_.erase(it);
  // Links first: from now on the pod's new connections go straight to the app. The
  // listeners close on the loop thread; connections already relayed carry on.
  pod->interception.reset();
  if (relay_running) relay_.post_remove_listeners(pod->listeners);
  const int64_t now = unix_ms();
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

std::optional<uint32_t> NodeAgent::pod_of_scope(uint32_t scope) const {
  std::lock_guard lock(mu_);
  for (const auto& [uid, pod] : pods_)
    if (pod->inbound_scope == scope || (pod->outbound_scope != 0 && pod->outbound_scope == scope))
      return pod->inbound_scope;
  return std::nullopt;
}

std::string NodeAgent::set_intercepting(uint32_t key, bool on) {
  std::lock_guard lock(mu_);
  for (auto& [uid, pod] : pods_) {
    if (pod->inbound_scope != key) continue;
    const Status status = on ? pod->interception->resume() : pod->interception->suspend();
    return status ? std::string() : status.error();
  }
  return "no such pod (gone)";
}

std::vector<std::pair<uint32_t, std::string>> NodeAgent::pod_labels() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<uint32_t, std::string>> out;
  for (const auto& [uid, pod] : pods_) {
    const PodIdentity& id = pod->identity;
    const std::string name = id.name.empty() ? uid : id.name;
    out.emplace_back(pod->inbound_scope,
                     id.k8s_namespace.empty() ? name : id.k8s_namespace + "/" + name);
  }
  return out;
}

}  // namespace netprof
