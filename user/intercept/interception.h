// eBPF interception: one loaded BPF object per netprof process (InterceptNode), shared by
// every pod it attaches (Interception). Per pod there are only the relay's listening sockets
// inside the pod's netns, map entries keyed by the pod's netns cookie, the pod's copy of the
// small sk_lookup program and its links (sk_lookup on the netns, sock_ops and connect4/6 on
// the cgroup), and the dialers that take each connection on to where it was going.
// `netprof attach` is a node with one pod (Interception::start); `netprof node` loads one
// InterceptNode and attaches each pod to it. See bpf/netprof_intercept.bpf.c for the design.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "intercept/bpf_programs.h"
#include "base/expected.h"
#include "intercept/netns.h"
#include "relay/relay.h"

namespace netprof {

// The sk_msg fast path between local sockets. kAuto: on where skmsg_fionread_verdict()
// finds that this kernel's sockmap keeps FIONREAD and receive readiness right (see
// intercept/skmsg_probe.h), off with a note elsewhere; kOn: on even there.
enum class SkMsgMode { kAuto, kOn, kOff };
// The skmsg setting's text (auto, on, off; settings/setting_table.cc checks it).
inline SkMsgMode skmsg_mode(const std::string& text) {
  return text == "off" ? SkMsgMode::kOff : text == "on" ? SkMsgMode::kOn : SkMsgMode::kAuto;
}

struct InterceptOptions {
  std::string netns_path;              // the pod's netns; empty = netprof's own (per pod)
  std::string cgroup_path;             // the pod's cgroup v2; needed for outbound (per pod)
  std::vector<uint16_t> inbound_ports;   // connections INTO the pod on these local ports
  std::vector<uint16_t> outbound_ports;  // connections FROM the pod's cgroup to these ports
  bool ipv4 = true;
  bool ipv6 = true;
  bool skmsg = true;                   // false: sk_msg off, whatever skmsg_mode says
  SkMsgMode skmsg_mode = SkMsgMode::kAuto;
  uint32_t inbound_scope = 0;          // ListenerSpec::scope of inbound connections (per pod)
  uint32_t outbound_scope = 1;         // ... and of outbound ones (per pod)
  // How long a relay upstream stays guarded from sk_lookup: longer than the relay's
  // connect timeout, since SYN retransmissions go through sk_lookup again.
  std::chrono::milliseconds guard_lifetime{15000};
  int backlog = 4096;
  // Relay workers: each gets its own inbound listener per family (sk_lookup picks one by the
  // connection's 4-tuple hash) and joins the outbound listeners' SO_REUSEPORT group. Must not
  // exceed map_sizes.workers.
  uint32_t workers = 1;
  MapSizes map_sizes;                  // the shared maps, sized for the node (pods = 1: attach)
};

// What differs per pod when attaching it to a loaded InterceptNode.
struct PodTarget {
  std::string netns_path;   // empty = netprof's own
  std::string cgroup_path;  // needed for outbound
  uint32_t inbound_scope = 0;
  uint32_t outbound_scope = 1;
};

struct InterceptState;
struct PodSockets;
class Interception;

class InterceptNode : public std::enable_shared_from_this<InterceptNode> {
 public:
  // Loads the programs and maps once (ports, families, sk_msg and map sizes from `options`;
  // its per-pod fields are ignored) and attaches what is node-wide (sk_msg on local_peers).
  static Expected<std::shared_ptr<InterceptNode>> load(const InterceptOptions& options);
  ~InterceptNode();
  InterceptNode(const InterceptNode&) = delete;
  InterceptNode& operator=(const InterceptNode&) = delete;

  // Attaches one pod. Destroying the result detaches it and removes its map entries; the
  // other pods are not touched.
  Expected<std::unique_ptr<Interception>> attach(const PodTarget& pod);

  // Node-wide notes found at load, e.g. the sk_msg verdict: log them once, not per pod.
  const std::vector<std::string>& notes() const { return notes_; }
  CounterValues counters() const { return programs_->counters(); }
  const InterceptPrograms& programs() const { return *programs_; }
  bool skmsg_on() const { return skmsg_attachment_.has_value(); }
  bool skb_pass_on() const { return skb_pass_attachment_.has_value(); }
  const InterceptOptions& options() const { return options_; }

 private:
  friend class Interception;
  InterceptNode() = default;
  // sock_ops links on cgroups are shared by the pods that need the same cgroup (netprof's own
  // when sk_msg is on): a cgroup gets the program once, and loses it with its last pod.
  Expected<std::shared_ptr<BpfLink>> sock_ops_link(const std::string& dir);
  // The steps of attach(), in their order (see interception.cc).
  Status add_map_entries(Interception& pod, const netprof_pod& entry, const PodSockets& sockets);
  Status attach_links(Interception& pod, const std::string& pod_cgroup);
  void hand_over_listeners(Interception& pod, PodSockets& sockets, const PodTarget& target);

  InterceptOptions options_;
  std::shared_ptr<const InterceptPrograms> programs_;  // first: outlives the attachments
  std::optional<MapAttachment> skmsg_attachment_;
  std::optional<MapAttachment> skb_pass_attachment_;
  std::optional<Netns> home_;
  std::string own_cgroup_;  // sock_ops target for the relay's sockets when sk_msg is on
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<BpfLink>> sock_ops_links_;  // by cgroup dir
  std::vector<std::string> notes_;
};

class Interception {
 public:
  // `netprof attach`: a node with one pod (options.netns_path, cgroup_path, scopes).
  static Expected<std::unique_ptr<Interception>> start(const InterceptOptions& options);
  ~Interception();
  Interception(const Interception&) = delete;
  Interception& operator=(const Interception&) = delete;

  // The relay's listeners (fds are handed over: call once).
  std::vector<ListenerSpec> take_listeners();
  // Non-fatal limits found at start, e.g. "IPv6 outbound off: no ::1 in the pod". From
  // start(): the node's notes too; from InterceptNode::attach(): only this pod's.
  const std::vector<std::string>& notes() const { return notes_; }
  CounterValues counters() const;  // node-wide
  bool skmsg_on() const { return node_->skmsg_on(); }
  bool skb_pass_on() const { return node_->skb_pass_on(); }
  const InterceptPrograms& programs() const;
  // IDs of the links this pod holds, its share of node-wide ones included (for tests that
  // check a clean detach).
  std::vector<uint32_t> link_ids() const;
  // Where connect4/connect6 send connections ("127.0.0.1:PORT", "[::1]:PORT").
  std::vector<SocketAddress> outbound_listener_addresses() const;
  uint64_t netns_cookie() const;

  // Overload fail-open (relay/overload_guard.h): suspend() drops this pod's own links
  // (sk_lookup on its netns, connect4/6 on its cgroup), so its new connections take the normal
  // path straight to the app or the remote; the relay's listeners, the map entries and the
  // shared sock_ops links stay, so connections already relayed (and connects already
  // rewritten) carry on. resume() attaches the links again. Both are idempotent; call them
  // from one thread at a time (node mode: under the NodeAgent's lock).
  Status suspend();
  Status resume();
  bool suspended() const { return suspended_; }

 private:
  friend class InterceptNode;
  Interception() = default;
  void remove_map_entries();
  // The links only this pod has: connect4/6 on its cgroup (outbound), sk_lookup on its netns
  // (inbound). At attach and at resume().
  Status attach_own_links();

  std::shared_ptr<InterceptNode> node_;
  std::shared_ptr<InterceptState> state_;
  std::vector<std::shared_ptr<BpfLink>> shared_links_;
  std::vector<BpfLink> links_;
  UniqueFd lookup_program_;  // the pod's copy of the sk_lookup program
  std::string pod_cgroup_;   // resolved cgroup directory; "" without outbound
  bool suspended_ = false;
  bool pod_entry_ = false;   // the pods map has this pod's entry
  std::vector<netprof_listener_key> listener_keys_;
  std::vector<ListenerSpec> listeners_;
  std::vector<SocketAddress> outbound_addresses_;
  std::vector<std::string> notes_;
};

// "80,8080" -> {80, 8080}. Returns an error naming the bad item.
Expected<std::vector<uint16_t>> parse_port_list(const std::string& text);

}  // namespace netprof
