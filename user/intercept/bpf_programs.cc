#include "intercept/bpf_programs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "netprof_intercept.skel.h"

namespace netprof {
namespace {

const char kVerboseHint[] = " (run with --verbose for the libbpf and verifier log)";

}  // namespace

Expected<InterceptPrograms> InterceptPrograms::load(const ProgramConfig& config) {
  netprof_intercept_bpf* skel = netprof_intercept_bpf__open();
  if (!skel) return errno_error("cannot open the BPF object", errno);
  InterceptPrograms programs(skel);

  skel->rodata->target_netns_cookie = config.netns_cookie;
  skel->rodata->skmsg_enabled = config.skmsg ? 1 : 0;
  skel->rodata->outbound_listener_ip4 = config.outbound_ip4;
  skel->rodata->outbound_listener_port4 = config.outbound_port4;
  for (size_t i = 0; i < 4; ++i) skel->rodata->outbound_listener_ip6[i] = config.outbound_ip6[i];
  skel->rodata->outbound_listener_port6 = config.outbound_port6;

  bpf_program__set_autoload(skel->progs.netprof_steer_inbound, config.inbound);
  bpf_program__set_autoload(skel->progs.netprof_connect4, config.outbound);
  bpf_program__set_autoload(skel->progs.netprof_connect6, config.outbound);
  bpf_program__set_autoload(skel->progs.netprof_sock_ops, config.sock_ops || config.skmsg);
  bpf_program__set_autoload(skel->progs.netprof_redirect_local, config.skmsg);
  bpf_program__set_autoload(skel->progs.netprof_skb_pass, config.skb_pass);

  const int err = netprof_intercept_bpf__load(skel);
  if (err) {
    Error error = errno_error("cannot load the BPF programs into the kernel", -err);
    error.message += kVerboseHint;
    return error;
  }
  return programs;
}

InterceptPrograms::InterceptPrograms(InterceptPrograms&& other) noexcept
    : skel_(std::exchange(other.skel_, nullptr)) {}

InterceptPrograms& InterceptPrograms::operator=(InterceptPrograms&& other) noexcept {
  if (this != &other) {
    if (skel_) netprof_intercept_bpf__destroy(skel_);
    skel_ = std::exchange(other.skel_, nullptr);
  }
  return *this;
}

InterceptPrograms::~InterceptPrograms() {
  if (skel_) netprof_intercept_bpf__destroy(skel_);
}

bpf_program* InterceptPrograms::steer_inbound() const { return skel_->progs.netprof_steer_inbound; }
bpf_program* InterceptPrograms::connect4() const { return skel_->progs.netprof_connect4; }
bpf_program* InterceptPrograms::connect6() const { return skel_->progs.netprof_connect6; }
bpf_program* InterceptPrograms::sock_ops() const { return skel_->progs.netprof_sock_ops; }
bpf_program* InterceptPrograms::redirect_local() const {
  return skel_->progs.netprof_redirect_local;
}
bpf_program* InterceptPrograms::skb_pass() const { return skel_->progs.netprof_skb_pass; }

int InterceptPrograms::inbound_ports_fd() const { return bpf_map__fd(skel_->maps.inbound_ports); }
int InterceptPrograms::outbound_ports_fd() const {
  return bpf_map__fd(skel_->maps.outbound_ports);
}
int InterceptPrograms::relay_listeners_fd() const {
  return bpf_map__fd(skel_->maps.relay_listeners);
}
int InterceptPrograms::upstream_guard_fd() const {
  return bpf_map__fd(skel_->maps.upstream_guard);
}
int InterceptPrograms::guard_cookies_fd() const { return bpf_map__fd(skel_->maps.guard_cookies); }
int InterceptPrograms::orig_dst_by_tuple_fd() const {
  return bpf_map__fd(skel_->maps.orig_dst_by_tuple);
}
int InterceptPrograms::local_peers_fd() const { return bpf_map__fd(skel_->maps.local_peers); }
int InterceptPrograms::counters_fd() const { return bpf_map__fd(skel_->maps.counters); }

CounterValues InterceptPrograms::counters() const {
  CounterValues totals{};
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return totals;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t index = 0; index < NETPROF_CNT_COUNT; ++index) {
    if (bpf_map_lookup_elem(counters_fd(), &index, per_cpu.data()) != 0) continue;
    for (uint64_t value : per_cpu) totals[index] += value;
  }
  return totals;
}

Expected<BpfLink> BpfLink::attach_netns(bpf_program* program, int netns_fd, const char* what) {
  bpf_link* link = bpf_program__attach_netns(program, netns_fd);
  if (!link) return errno_error(std::string("cannot attach ") + what + " to the network namespace", errno);
  return BpfLink(link);
}

Expected<BpfLink> BpfLink::attach_cgroup(bpf_program* program, int cgroup_fd, const char* what) {
  bpf_link* link = bpf_program__attach_cgroup(program, cgroup_fd);
  if (!link) return errno_error(std::string("cannot attach ") + what + " to the cgroup", errno);
  return BpfLink(link);
}

BpfLink::BpfLink(BpfLink&& other) noexcept : link_(std::exchange(other.link_, nullptr)) {}

BpfLink& BpfLink::operator=(BpfLink&& other) noexcept {
  if (this != &other) {
    if (link_) bpf_link__destroy(link_);
    link_ = std::exchange(other.link_, nullptr);
  }
  return *this;
}

BpfLink::~BpfLink() {
  if (link_) bpf_link__destroy(link_);
}

int BpfLink::fd() const { return link_ ? bpf_link__fd(link_) : -1; }

Expected<MapAttachment> MapAttachment::attach(int program_fd, int map_fd, int attach_type,
                                              const char* what) {
  if (bpf_prog_attach(program_fd, map_fd, static_cast<bpf_attach_type>(attach_type), 0) != 0)
    return errno_error(std::string("cannot attach ") + what + " to its map", errno);
  return MapAttachment(program_fd, map_fd, attach_type);
}

MapAttachment::MapAttachment(MapAttachment&& other) noexcept
    : program_fd_(std::exchange(other.program_fd_, -1)),
      map_fd_(std::exchange(other.map_fd_, -1)),
      type_(other.type_) {}

MapAttachment& MapAttachment::operator=(MapAttachment&& other) noexcept {
  if (this != &other) {
    reset();
    program_fd_ = std::exchange(other.program_fd_, -1);
    map_fd_ = std::exchange(other.map_fd_, -1);
    type_ = other.type_;
  }
  return *this;
}

MapAttachment::~MapAttachment() { reset(); }

void MapAttachment::reset() {
  if (program_fd_ >= 0 && map_fd_ >= 0)
    bpf_prog_detach2(program_fd_, map_fd_, static_cast<bpf_attach_type>(type_));
  program_fd_ = map_fd_ = -1;
}

}  // namespace netprof
