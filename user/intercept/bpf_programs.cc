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

Status set_size(bpf_map* map, uint32_t entries) {
  if (bpf_map__set_max_entries(map, entries) != 0)
    return errno_error(std::string("cannot size the BPF map ") + bpf_map__name(map), errno);
  return ok_status();
}

}  // namespace

Error bpf_failure(const std::string& what, int err) {
  Error error = errno_error(what, err);
  if (err == ENOMEM || err == E2BIG)
    error.message +=
        ": the BPF maps did not fit in netprof's memory. Raise the container's memory limit "
        "(deploy/README.md has the formula: base + per pod x pods) or make the maps smaller "
        "(max_pods, bpf_pending_entries, bpf_local_peers; `netprof node --help`)";
  else if (err == EPERM || err == EACCES)
    error.message +=
        ": not allowed. netprof needs CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN (setns, cgroup "
        "attach) and CAP_SYS_PTRACE (pods' namespaces), or root; on kernels before 5.11 also "
        "RLIMIT_MEMLOCK high enough for the maps (ulimit -l unlimited)";
  else
    error.message += kVerboseHint;
  return error;
}

Expected<InterceptPrograms> InterceptPrograms::load(const ProgramConfig& config) {
  netprof_intercept_bpf* skel = netprof_intercept_bpf__open();
  if (!skel) return errno_error("cannot open the BPF object", errno);
  InterceptPrograms programs(skel);

  skel->rodata->skmsg_enabled = config.skmsg ? 1 : 0;

  const MapSizes& sizes = config.sizes;
  if (sizes.pods < 1 || sizes.workers < 1 || sizes.workers > NETPROF_MAX_WORKERS ||
      sizes.pending < 1 || sizes.local_peers < 1)
    return Error{"BPF map sizes out of range"};
  const std::pair<bpf_map*, uint32_t> maps[] = {
      {skel->maps.pods, sizes.pods},
      {skel->maps.relay_listeners, sizes.pods * sizes.workers * NETPROF_SLOT_COUNT},
      {skel->maps.upstream_guard, sizes.pending},
      {skel->maps.guard_cookies, sizes.pending},
      {skel->maps.orig_dst_by_cookie, sizes.pending},
      {skel->maps.orig_dst_by_tuple, sizes.pending},
      {skel->maps.pending_actives, sizes.pending},
      {skel->maps.local_peers, sizes.local_peers},
  };
  for (const auto& [map, entries] : maps)
    if (auto status = set_size(map, entries); !status) return status.take_error();

  bpf_program__set_autoload(skel->progs.netprof_steer_inbound, config.inbound);
  bpf_program__set_autoload(skel->progs.netprof_connect4, config.outbound);
  bpf_program__set_autoload(skel->progs.netprof_connect6, config.outbound);
  bpf_program__set_autoload(skel->progs.netprof_sock_ops, config.sock_ops || config.skmsg);
  bpf_program__set_autoload(skel->progs.netprof_redirect_local, config.skmsg);
  bpf_program__set_autoload(skel->progs.netprof_skb_pass, config.skb_pass);

  const int err = netprof_intercept_bpf__load(skel);
  if (err) return bpf_failure("cannot load the BPF programs into the kernel", -err);
  return programs;
}

Expected<UniqueFd> InterceptPrograms::load_pod_lookup(uint64_t netns_cookie) const {
  bpf_program* program = skel_->progs.netprof_steer_inbound;
  const bpf_insn* loaded = bpf_program__insns(program);
  const size_t count = bpf_program__insn_cnt(program);
  if (!loaded || count == 0 || bpf_program__fd(program) < 0)
    return Error{"the sk_lookup program is not loaded"};
  std::vector<bpf_insn> insns(loaded, loaded + count);
  // ld_imm64 is two instructions: the low 32 bits in the first imm, the high in the second.
  const auto low = static_cast<int32_t>(NETPROF_POD_COOKIE_PLACEHOLDER & 0xffffffffu);
  const auto high = static_cast<int32_t>(NETPROF_POD_COOKIE_PLACEHOLDER >> 32);
  size_t patched = 0;
  for (size_t i = 0; i + 1 < insns.size(); ++i) {
    bpf_insn& insn = insns[i];
    if (insn.code != (BPF_LD | BPF_IMM | BPF_DW)) continue;
    if (insn.src_reg == 0 && insn.imm == low && insns[i + 1].imm == high) {
      insn.imm = static_cast<int32_t>(netns_cookie & 0xffffffffu);
      insns[i + 1].imm = static_cast<int32_t>(netns_cookie >> 32);
      ++patched;
    }
    ++i;  // the second half of the ld_imm64
  }
  if (patched == 0) return Error{"the sk_lookup program has no pod cookie placeholder"};
  LIBBPF_OPTS(bpf_prog_load_opts, options, .expected_attach_type = BPF_SK_LOOKUP);
  UniqueFd fd(bpf_prog_load(BPF_PROG_TYPE_SK_LOOKUP, "netprof_pod_in", "Dual BSD/GPL",
                            insns.data(), insns.size(), &options));
  if (!fd.valid()) return bpf_failure("cannot load the pod's sk_lookup program", errno);
  return fd;
}

namespace {

std::vector<uint32_t> ids_of(const std::vector<int>& fds, bool maps) {
  std::vector<uint32_t> ids;
  for (int fd : fds) {
    if (fd < 0) continue;
    if (maps) {
      bpf_map_info info{};
      __u32 length = sizeof(info);
      if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0) ids.push_back(info.id);
    } else {
      bpf_prog_info info{};
      __u32 length = sizeof(info);
      if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0) ids.push_back(info.id);
    }
  }
  return ids;
}

}  // namespace

std::vector<uint32_t> InterceptPrograms::map_ids() const {
  std::vector<int> fds;
  bpf_map* map;
  bpf_object__for_each_map(map, skel_->obj) fds.push_back(bpf_map__fd(map));
  return ids_of(fds, true);
}

std::vector<uint32_t> InterceptPrograms::program_ids() const {
  std::vector<int> fds;
  bpf_program* program;
  bpf_object__for_each_program(program, skel_->obj) fds.push_back(bpf_program__fd(program));
  return ids_of(fds, false);
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
int InterceptPrograms::pods_fd() const { return bpf_map__fd(skel_->maps.pods); }
int InterceptPrograms::orig_dst_by_cookie_fd() const {
  return bpf_map__fd(skel_->maps.orig_dst_by_cookie);
}
int InterceptPrograms::pending_actives_fd() const {
  return bpf_map__fd(skel_->maps.pending_actives);
}

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
  if (!link)
    return bpf_failure(std::string("cannot attach ") + what + " to the network namespace", errno);
  return BpfLink(link);
}

Expected<BpfLink> BpfLink::attach_netns_fd(int program_fd, int netns_fd, const char* what) {
  UniqueFd link(bpf_link_create(program_fd, netns_fd, BPF_SK_LOOKUP, nullptr));
  if (!link.valid())
    return bpf_failure(std::string("cannot attach ") + what + " to the network namespace", errno);
  return BpfLink(std::move(link));
}

Expected<BpfLink> BpfLink::attach_cgroup(bpf_program* program, int cgroup_fd, const char* what) {
  bpf_link* link = bpf_program__attach_cgroup(program, cgroup_fd);
  if (!link) return bpf_failure(std::string("cannot attach ") + what + " to the cgroup", errno);
  return BpfLink(link);
}

BpfLink::BpfLink(BpfLink&& other) noexcept
    : link_(std::exchange(other.link_, nullptr)), raw_(std::move(other.raw_)) {}

BpfLink& BpfLink::operator=(BpfLink&& other) noexcept {
  if (this != &other) {
    if (link_) bpf_link__destroy(link_);
    link_ = std::exchange(other.link_, nullptr);
    raw_ = std::move(other.raw_);
  }
  return *this;
}

BpfLink::~BpfLink() {
  if (link_) bpf_link__destroy(link_);
}

int BpfLink::fd() const { return link_ ? bpf_link__fd(link_) : raw_.get(); }

Expected<MapAttachment> MapAttachment::attach(int program_fd, int map_fd, int attach_type,
                                              const char* what) {
  if (bpf_prog_attach(program_fd, map_fd, static_cast<bpf_attach_type>(attach_type), 0) != 0)
    return bpf_failure(std::string("cannot attach ") + what + " to its map", errno);
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
