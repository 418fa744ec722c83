#include "intercept/interception.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "base/cgroup_v2.h"
#include "intercept/pod_dialers.h"
#include "intercept/skmsg_probe.h"
#include "intercept/socket_keys.h"
#include "base/unique_fd.h"
#include "settings/settings.h"

#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

namespace netprof {

// A pod's relay listeners, made inside its netns: one of each per relay worker (index =
// worker); an empty vector: that listener is off.
struct PodSockets {
  std::vector<UniqueFd> inbound4, inbound6, outbound4, outbound6;
  uint64_t netns_cookie = 0;
};

static_assert(kMaxPortsPerDirection == NETPROF_MAX_PORTS,
              "the port settings' limit is the BPF port maps' size");
namespace {

SocketAddress loopback(int family) {
  SocketAddress address;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(address.get());
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.length = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(address.get());
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    address.length = sizeof(sockaddr_in6);
  }
  return address;
}

// A listener on loopback:ephemeral in the current netns. `freebind` for the inbound ones:
// sk_lookup hands them connections whatever they are bound to, so they need no usable
// address (a pod's lo may even be down), and binding to loopback keeps them unreachable
// from outside.
// With `reuse_port_of` >= 0, joins that listener's port in an SO_REUSEPORT group (the relay
// workers' outbound listeners: connect4/6 send every connection to one port, the kernel
// spreads them over the group by 4-tuple hash).
Expected<UniqueFd> make_listener(int family, bool freebind, int backlog, int reuse_port_of = -1,
                                 bool reuse_port = false) {
  const char* name = family == AF_INET ? "IPv4" : "IPv6";
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno_error(std::string("cannot create an ") + name + " listener", errno);
  const int one = 1;
  if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  // Accepted sockets inherit SO_REUSEADDR. Inbound ones carry the app's own address and
  // port; without it, one the relay closed first would sit in TIME_WAIT and make the app's
  // bind() of its port fail (e.g. when the app restarts) for a minute.
  if (freebind) setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (freebind) {
    if (family == AF_INET)
      setsockopt(fd.get(), IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
    else
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
  }
  if (reuse_port) setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  SocketAddress address = loopback(family);
  if (reuse_port_of >= 0) {
    address.length = sizeof address.storage;
    getsockname(reuse_port_of, address.get(), &address.length);
  }
  if (bind(fd.get(), address.get(), address.length) != 0)
    return errno_error(std::string("cannot bind the ") + name + " listener to " +
                           address.to_string() + " in the pod",
                       errno);
  if (listen(fd.get(), backlog) != 0)
    return errno_error(std::string("cannot listen on the ") + name + " listener", errno);
  return fd;
}

Expected<UniqueFd> open_dir(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("cannot open " + path, errno);
  return fd;
}

Status fill_ports(int map_fd, const std::vector<uint16_t>& ports) {
  const __u8 present = 1;
  for (uint16_t port : ports) {
    __u16 key = port;
    if (bpf_map_update_elem(map_fd, &key, &present, BPF_ANY) != 0)
      return errno_error("cannot add port " + std::to_string(port) + " to a BPF map", errno);
  }
  return ok_status();
}

// The cgroups sock_ops must be attached to: the pod's (its clients and app sockets), and
// netprof's own when sk_msg is on (the relay's sockets are both ends of the local hops).
// A cgroup inside another one on the list is dropped: attachments are inherited.
std::vector<std::string> sock_ops_cgroups(const std::string& pod, const std::string& own) {
  std::vector<std::string> all;
  if (!pod.empty()) all.push_back(pod);
  if (!own.empty()) all.push_back(own);
  std::vector<std::string> kept;
  for (size_t i = 0; i < all.size(); ++i) {
    bool inside_other = false;
    for (size_t j = 0; j < all.size(); ++j)
      if (i != j && all[i] != all[j] && cgroup_is_within(all[i], all[j])) inside_other = true;
    if (!inside_other && std::find(kept.begin(), kept.end(), all[i]) == kept.end())
      kept.push_back(all[i]);
  }
  return kept;
}

Status add_listener_entry(int map_fd, const netprof_listener_key& key, int socket_fd) {
  const __u64 value = static_cast<__u64>(socket_fd);
  if (bpf_map_update_elem(map_fd, &key, &value, BPF_ANY) != 0)
    return bpf_failure("cannot put the relay listener in the listener SOCKHASH", errno);
  return ok_status();
}

Expected<PodSockets> create_pod_sockets(const InterceptOptions& options, const Netns& pod,
                                        const Netns& home, std::vector<std::string>& notes) {
  NetnsGuard in_pod(pod, home);
  if (!in_pod.entered())
    return errno_error("cannot enter the network namespace " + pod.path(), in_pod.error());
  PodSockets sockets;
  const bool inbound = !options.inbound_ports.empty();
  const bool outbound = !options.outbound_ports.empty();
  const uint32_t workers = std::max<uint32_t>(1, options.workers);
  const bool group = workers > 1;
  for (uint32_t w = 0; w < workers; ++w) {
    if (inbound && options.ipv4) {
      auto fd = make_listener(AF_INET, true, options.backlog);
      if (!fd) return fd.take_error();
      sockets.inbound4.push_back(std::move(*fd));
    }
    if (inbound && options.ipv6 && (w == 0 || !sockets.inbound6.empty())) {
      auto fd = make_listener(AF_INET6, true, options.backlog);
      if (fd) sockets.inbound6.push_back(std::move(*fd));
      else if (w == 0) notes.push_back("IPv6 inbound off: " + fd.error());
      else return fd.take_error();
    }
    if (outbound && options.ipv4) {
      const int first = w == 0 ? -1 : sockets.outbound4.front().get();
      auto fd = make_listener(AF_INET, false, options.backlog, first, group);
      if (!fd) return Error{fd.error() + (w == 0 ? " (is lo up in the pod?)" : "")};
      sockets.outbound4.push_back(std::move(*fd));
    }
    if (outbound && options.ipv6 && (w == 0 || !sockets.outbound6.empty())) {
      const int first = w == 0 ? -1 : sockets.outbound6.front().get();
      auto fd = make_listener(AF_INET6, false, options.backlog, first, group);
      if (fd) sockets.outbound6.push_back(std::move(*fd));
      else if (w == 0) notes.push_back("IPv6 outbound off: " + fd.error());
      else return fd.take_error();
    }
  }
  UniqueFd probe(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.valid()) sockets.netns_cookie = socket_netns_cookie(probe.get());
  if (sockets.netns_cookie == 0)
    return Error{"cannot read the pod's netns cookie (SO_NETNS_COOKIE, Linux 5.14+): netprof "
                 "keys each pod's BPF map entries by it (`netprof check` lists what is missing)"};
  return sockets;
}

// The pods map value: how many relay workers serve the pod and where connect4/6 send its
// outbound connections (the first outbound listener of each family; the others share its port).
netprof_pod pod_map_value(const PodSockets& sockets, uint32_t workers,
                          std::vector<SocketAddress>& outbound_addresses) {
  netprof_pod entry;
  std::memset(&entry, 0, sizeof(entry));
  entry.relay_workers = std::max<uint32_t>(1, workers);
  if (!sockets.outbound4.empty()) {
    const SocketAddress address = local_address(sockets.outbound4.front().get());
    entry.outbound_ip4 = htonl(INADDR_LOOPBACK);
    entry.outbound_port4 = port_of(address);
    outbound_addresses.push_back(address);
  }
  if (!sockets.outbound6.empty()) {
    const SocketAddress address = local_address(sockets.outbound6.front().get());
    std::memcpy(entry.outbound_ip6, &in6addr_loopback, 16);
    entry.outbound_port6 = port_of(address);
    outbound_addresses.push_back(address);
  }
  return entry;
}

// Whether sk_msg is on for this process and whether it needs the no-op SK_SKB verdict. The
// probe's verdict decides kAuto, and where the TCP-path bytes of a socket in local_peers need
// the no-op SK_SKB verdict, it is attached in kOn too. Decided once per process: the kernel
// does not change under it.
struct SkMsgChoice {
  bool on = false;
  bool skb_pass = false;
};
SkMsgChoice choose_skmsg(const InterceptOptions& options, std::vector<std::string>& notes) {
  SkMsgChoice choice;
  choice.on = options.skmsg && options.skmsg_mode != SkMsgMode::kOff;
  if (!choice.on) return choice;
  const SkMsgProbe& probe = skmsg_fionread_verdict();
  choice.skb_pass = probe.needs_skb_pass();
  if (!probe.usable()) {
    choice.on = options.skmsg_mode == SkMsgMode::kOn;
    notes.push_back(std::string(choice.on ? "sk_msg forced on, but " : "sk_msg off: ") +
                    "this kernel's sockmap would break FIONREAD or readiness for "
                    "the app's sockets: " + probe.summary());
  } else if (choice.skb_pass) {
    notes.push_back("sk_msg with a no-op SK_SKB verdict on its map: " + probe.summary());
  }
  return choice;
}

}  // namespace

Expected<std::vector<uint16_t>> parse_port_list(const std::string& text) {
  std::vector<uint16_t> ports;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    const long value = std::strtol(item.c_str(), &end, 10);
    if (*end != '\0' || value < 1 || value > 65535)
      return Error{"'" + item + "' is not a TCP port (1-65535)"};
    ports.push_back(static_cast<uint16_t>(value));
  }
  if (ports.size() > NETPROF_MAX_PORTS)
    return Error{"at most " + std::to_string(NETPROF_MAX_PORTS) + " ports per direction"};
  return ports;
}

Expected<std::shared_ptr<InterceptNode>> InterceptNode::load(const InterceptOptions& options) {
  const bool inbound = !options.inbound_ports.empty();
  const bool outbound = !options.outbound_ports.empty();
  if (!inbound && !outbound) return Error{"no ports to intercept: give inbound and/or outbound ports"};
  if (!options.ipv4 && !options.ipv6) return Error{"both IPv4 and IPv6 are off"};

  std::shared_ptr<InterceptNode> node(new InterceptNode());
  node->options_ = options;
  auto home = Netns::open("");
  if (!home) return home.take_error();
  node->home_.emplace(std::move(*home));

  const SkMsgChoice skmsg = choose_skmsg(options, node->notes_);
  if (skmsg.on) {
    auto dir = own_cgroup_dir();
    if (dir) node->own_cgroup_ = *dir;
    else node->notes_.push_back("sk_msg only for the pods' own sockets: " + dir.error());
  }

  ProgramConfig config;
  config.inbound = inbound;
  config.outbound = outbound;
  config.skmsg = skmsg.on;
  config.skb_pass = skmsg.on && skmsg.skb_pass;
  config.sock_ops = outbound || skmsg.on;
  config.sizes = options.map_sizes;
  if (options.workers < 1 || options.workers > NETPROF_MAX_WORKERS)
    return Error{"relay workers must be 1-" + std::to_string(NETPROF_MAX_WORKERS)};
  config.sizes.workers = std::max(config.sizes.workers, options.workers);
  auto programs = InterceptPrograms::load(config);
  if (!programs) return programs.take_error();
  node->programs_ = std::make_shared<const InterceptPrograms>(std::move(*programs));
  const InterceptPrograms& progs = *node->programs_;

  if (auto status = fill_ports(progs.inbound_ports_fd(), options.inbound_ports); !status)
    return status.take_error();
  if (auto status = fill_ports(progs.outbound_ports_fd(), options.outbound_ports); !status)
    return status.take_error();
  if (skmsg.on) {
    auto attachment = MapAttachment::attach(bpf_program__fd(progs.redirect_local()),
                                            progs.local_peers_fd(), BPF_SK_MSG_VERDICT, "sk_msg");
    if (!attachment) return attachment.take_error();
    node->skmsg_attachment_.emplace(std::move(*attachment));
  }
  if (config.skb_pass) {
    auto attachment =
        MapAttachment::attach(bpf_program__fd(progs.skb_pass()), progs.local_peers_fd(),
                              BPF_SK_SKB_VERDICT, "the no-op SK_SKB verdict");
    if (!attachment) return attachment.take_error();
    node->skb_pass_attachment_.emplace(std::move(*attachment));
  }
  return node;
}

InterceptNode::~InterceptNode() {
  skmsg_attachment_.reset();
  skb_pass_attachment_.reset();
}

Expected<std::shared_ptr<BpfLink>> InterceptNode::sock_ops_link(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (auto it = sock_ops_links_.find(dir); it != sock_ops_links_.end())
    if (std::shared_ptr<BpfLink> link = it->second.lock()) return link;
  auto fd = open_dir(dir);
  if (!fd) return fd.take_error();
  auto link = BpfLink::attach_cgroup(programs_->sock_ops(), fd->get(), "sock_ops");
  if (!link) return Error{link.error() + " " + dir};
  auto shared = std::make_shared<BpfLink>(std::move(*link));
  // Drop entries of links that are gone, so the table does not grow with pods.
  for (auto it = sock_ops_links_.begin(); it != sock_ops_links_.end();)
    it = it->second.expired() ? sock_ops_links_.erase(it) : std::next(it);
  sock_ops_links_[dir] = shared;
  return shared;
}

// Attaching a pod, in this order (the order is what makes it safe):
//   1. its listeners inside its netns, and its netns cookie (create_pod_sockets);
//   2. its map entries: the pods map, then each inbound listener in the listener SOCKHASH
//      (add_map_entries);
//   3. its links: sock_ops, connect4/6 on its cgroup, its sk_lookup program on its netns
//      (attach_links) — last, so no connection is steered before everything it needs is in
//      place;
//   4. the listeners with their dialers, for the relay (hand_over_listeners).
// A step that fails returns its error; destroying the half-made Interception then detaches the
// links and removes the entries made so far (~Interception), so a failed attach leaves nothing.
Expected<std::unique_ptr<Interception>> InterceptNode::attach(const PodTarget& target) {
  const InterceptOptions& options = options_;
  const bool outbound = !options.outbound_ports.empty();
  if (outbound && target.cgroup_path.empty())
    return Error{"outbound interception needs the pod's cgroup (--cgroup): connect hooks are per cgroup"};

  std::unique_ptr<Interception> self(new Interception());
  self->node_ = shared_from_this();
  auto pod = Netns::open(target.netns_path);
  if (!pod) return pod.take_error();
  auto home = Netns::open("");
  if (!home) return home.take_error();

  InterceptOptions pod_options = options;
  pod_options.netns_path = target.netns_path;
  pod_options.cgroup_path = target.cgroup_path;
  auto sockets = create_pod_sockets(pod_options, *pod, *home, self->notes_);
  if (!sockets) return sockets.take_error();

  std::string pod_cgroup;
  if (!target.cgroup_path.empty()) {
    auto dir = resolve_cgroup_dir(target.cgroup_path);
    if (!dir) return dir.take_error();
    pod_cgroup = *dir;
  }

  const netprof_pod entry = pod_map_value(*sockets, options.workers, self->outbound_addresses_);
  self->state_ = std::make_shared<InterceptState>(InterceptState{
      programs_, std::move(*pod), std::move(*home), outbound, sockets->netns_cookie});

  if (auto status = add_map_entries(*self, entry, *sockets); !status) return status.take_error();
  if (auto status = attach_links(*self, pod_cgroup); !status) return status.take_error();
  hand_over_listeners(*self, *sockets, target);
  return self;
}

// Step 2. A netns already in the pods map (attached twice) is refused, not shared.
Status InterceptNode::add_map_entries(Interception& pod, const netprof_pod& entry,
                                      const PodSockets& sockets) {
  const InterceptPrograms& progs = *programs_;
  const uint64_t cookie = sockets.netns_cookie;
  if (bpf_map_update_elem(progs.pods_fd(), &cookie, &entry, BPF_NOEXIST) != 0) {
    const int err = errno;
    if (err == EEXIST) return Error{"this network namespace is already attached"};
    if (err == E2BIG)
      return Error{"the pods map is full (" + std::to_string(options_.map_sizes.pods) +
                   " pods): raise max_pods"};
    return bpf_failure("cannot add the pod to the pods map", err);
  }
  pod.pod_entry_ = true;
  const std::pair<__u32, const std::vector<UniqueFd>*> slots[] = {
      {NETPROF_SLOT_INBOUND_V4, &sockets.inbound4}, {NETPROF_SLOT_INBOUND_V6, &sockets.inbound6}};
  for (const auto& [slot, fds] : slots) {
    for (uint32_t worker = 0; worker < fds->size(); ++worker) {
      netprof_listener_key key;
      std::memset(&key, 0, sizeof(key));
      key.netns_cookie = cookie;
      key.worker = worker;
      key.slot = slot;
      if (auto status = add_listener_entry(progs.relay_listeners_fd(), key, (*fds)[worker].get());
          !status)
        return status.take_error();
      pod.listener_keys_.push_back(key);
    }
  }
  return ok_status();
}

// Step 3: from here on the pod's connections are steered to the relay's listeners.
Status InterceptNode::attach_links(Interception& pod, const std::string& pod_cgroup) {
  const InterceptPrograms& progs = *programs_;
  const bool inbound = !options_.inbound_ports.empty();
  const bool outbound = !options_.outbound_ports.empty();
  if (outbound || skmsg_on()) {
    for (const std::string& dir : sock_ops_cgroups(pod_cgroup, own_cgroup_)) {
      auto link = sock_ops_link(dir);
      if (!link) return link.take_error();
      pod.shared_links_.push_back(std::move(*link));
    }
  }
  if (inbound) {
    auto program = progs.load_pod_lookup(pod.state_->netns_cookie);
    if (!program) return program.take_error();
    pod.lookup_program_ = std::move(*program);
  }
  pod.pod_cgroup_ = outbound ? pod_cgroup : std::string();
  return pod.attach_own_links();
}

// Step 4: each listener with the dialer that takes its connections on (inbound: to the
// original destination inside the pod; outbound: to where the app connected). Workers dial
// concurrently and an InboundDialer keeps a ring of guard entries: one per worker (both
// families of a worker run on its thread). The OutboundDialer keeps no state of its own.
void InterceptNode::hand_over_listeners(Interception& pod, PodSockets& sockets,
                                        const PodTarget& target) {
  std::vector<std::shared_ptr<InboundDialer>> inbound_dialers;
  auto inbound_dialer_of = [&](uint32_t worker) {
    while (inbound_dialers.size() <= worker)
      inbound_dialers.push_back(
          std::make_shared<InboundDialer>(pod.state_, options_.guard_lifetime));
    return inbound_dialers[worker];
  };
  auto outbound_dialer = std::make_shared<OutboundDialer>(pod.state_);
  for (std::vector<UniqueFd>* fds : {&sockets.inbound4, &sockets.inbound6})
    for (uint32_t worker = 0; worker < fds->size(); ++worker)
      pod.listeners_.push_back(ListenerSpec{std::move((*fds)[worker]), target.inbound_scope,
                                            inbound_dialer_of(worker), worker});
  for (std::vector<UniqueFd>* fds : {&sockets.outbound4, &sockets.outbound6})
    for (uint32_t worker = 0; worker < fds->size(); ++worker)
      pod.listeners_.push_back(ListenerSpec{std::move((*fds)[worker]), target.outbound_scope,
                                            outbound_dialer, worker});
}

Status Interception::attach_own_links() {
  const InterceptPrograms& progs = *node_->programs_;
  if (!pod_cgroup_.empty()) {
    auto fd = open_dir(pod_cgroup_);
    if (!fd) return fd.take_error();
    for (auto [program, name] : {std::pair{progs.connect4(), "cgroup/connect4"},
                                 std::pair{progs.connect6(), "cgroup/connect6"}}) {
      auto link = BpfLink::attach_cgroup(program, fd->get(), name);
      if (!link) return Error{link.error() + " " + pod_cgroup_};
      links_.push_back(std::move(*link));
    }
  }
  if (lookup_program_.valid()) {
    auto link = BpfLink::attach_netns_fd(lookup_program_.get(), state_->pod.fd(), "sk_lookup");
    if (!link) return Error{link.error() + " " + state_->pod.path()};
    links_.push_back(std::move(*link));
  }
  return ok_status();
}

Status Interception::suspend() {
  links_.clear();  // detaches: the kernel's normal lookup and connect from here on
  suspended_ = true;
  return ok_status();
}

Status Interception::resume() {
  if (!suspended_) return ok_status();
  if (auto status = attach_own_links(); !status) {
    links_.clear();  // all or nothing: a half-attached pod would steer one way only
    return status;
  }
  suspended_ = false;
  return ok_status();
}

Expected<std::unique_ptr<Interception>> Interception::start(const InterceptOptions& options) {
  if (!options.outbound_ports.empty() && options.cgroup_path.empty())
    return Error{"outbound interception needs the pod's cgroup (--cgroup): connect hooks are per cgroup"};
  auto node = InterceptNode::load(options);
  if (!node) return node.take_error();
  auto pod = (*node)->attach(
      PodTarget{options.netns_path, options.cgroup_path, options.inbound_scope,
                options.outbound_scope});
  if (!pod) return pod.take_error();
  std::vector<std::string> notes = (*node)->notes();
  notes.insert(notes.end(), (*pod)->notes_.begin(), (*pod)->notes_.end());
  (*pod)->notes_ = std::move(notes);
  return std::move(*pod);
}

void Interception::remove_map_entries() {
  if (!node_ || !node_->programs_) return;
  const InterceptPrograms& progs = *node_->programs_;
  for (const netprof_listener_key& key : listener_keys_)
    bpf_map_delete_elem(progs.relay_listeners_fd(), &key);
  listener_keys_.clear();
  if (pod_entry_) {
    const uint64_t cookie = state_->netns_cookie;
    bpf_map_delete_elem(progs.pods_fd(), &cookie);
    pod_entry_ = false;
  }
}

Interception::~Interception() {
  // Detach first: from here on new connections take the normal path. Then the map entries
  // go, so a pod that comes back later in a new netns starts clean.
  links_.clear();
  shared_links_.clear();
  lookup_program_.reset();
  remove_map_entries();
  listeners_.clear();  // not taken: closed
}

std::vector<ListenerSpec> Interception::take_listeners() { return std::exchange(listeners_, {}); }

CounterValues Interception::counters() const { return node_->counters(); }

const InterceptPrograms& Interception::programs() const { return node_->programs(); }

uint64_t Interception::netns_cookie() const { return state_ ? state_->netns_cookie : 0; }

std::vector<uint32_t> Interception::link_ids() const {
  std::vector<uint32_t> ids;
  auto add = [&](const BpfLink& link) {
    bpf_link_info info{};
    __u32 length = sizeof(info);
    if (bpf_obj_get_info_by_fd(link.fd(), &info, &length) == 0) ids.push_back(info.id);
  };
  for (const BpfLink& link : links_) add(link);
  for (const auto& link : shared_links_) add(*link);
  return ids;
}

std::vector<SocketAddress> Interception::outbound_listener_addresses() const {
  return outbound_addresses_;
}

}  // namespace netprof
