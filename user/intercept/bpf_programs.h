// Move-only owners of the loaded BPF object (the libbpf skeleton of
// bpf/netprof_intercept.bpf.c) and of each attachment. Destroying an owner detaches or
// unloads; nothing is pinned, so the kernel does the same if the process dies.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "netprof_shared.h"

struct netprof_intercept_bpf;
struct bpf_link;
struct bpf_program;

namespace netprof {

// Sizes of the shared maps (one loaded object per netprof process, shared by every pod):
// node-wide settings, not per pod. See NETPROF_MAX_* in netprof_shared.h for the defaults.
struct MapSizes {
  uint32_t pods = 1;                              // pods attached at once
  uint32_t workers = 1;                           // relay workers per pod with listeners
  uint32_t pending = NETPROF_MAX_PENDING;         // handshakes in flight (LRU maps)
  uint32_t local_peers = NETPROF_MAX_LOCAL_PEERS; // sockets of the sk_msg fast path
};

// Set before load: which programs to load at all (a program that is not needed is not loaded,
// so a kernel without its hook still works), sk_msg on or off, and the map sizes.
struct ProgramConfig {
  bool inbound = false;   // load sk_lookup
  bool outbound = false;  // load connect4/connect6
  bool sock_ops = false;  // load sock_ops (outbound tuples and/or sk_msg peers)
  bool skmsg = false;     // load sk_msg; sock_ops fills local_peers
  bool skb_pass = false;  // load the no-op SK_SKB verdict (kernel bug workaround)
  MapSizes sizes;
};

using CounterValues = std::array<uint64_t, NETPROF_CNT_COUNT>;

class InterceptPrograms {
 public:
  static Expected<InterceptPrograms> load(const ProgramConfig& config);
  InterceptPrograms(InterceptPrograms&& other) noexcept;
  InterceptPrograms& operator=(InterceptPrograms&& other) noexcept;
  InterceptPrograms(const InterceptPrograms&) = delete;
  InterceptPrograms& operator=(const InterceptPrograms&) = delete;
  ~InterceptPrograms();

  bpf_program* steer_inbound() const;
  bpf_program* connect4() const;
  bpf_program* connect6() const;
  bpf_program* sock_ops() const;
  bpf_program* redirect_local() const;
  bpf_program* skb_pass() const;

  int inbound_ports_fd() const;
  int outbound_ports_fd() const;
  int relay_listeners_fd() const;
  int upstream_guard_fd() const;
  int guard_cookies_fd() const;
  int orig_dst_by_tuple_fd() const;
  int local_peers_fd() const;
  int counters_fd() const;

  int pods_fd() const;
  int orig_dst_by_cookie_fd() const;
  int pending_actives_fd() const;

  // Sums of the per-CPU counters (index: enum netprof_counter).
  CounterValues counters() const;

  // One pod's copy of netprof_steer_inbound: the loaded program's instructions with the
  // placeholder replaced by `netns_cookie` (sk_lookup has no bpf_get_netns_cookie). It uses
  // this object's maps; the kernel verifies the small copy on load.
  Expected<UniqueFd> load_pod_lookup(uint64_t netns_cookie) const;
  // IDs of the object's loaded maps and programs (for tests and the benchmark).
  std::vector<uint32_t> map_ids() const;
  std::vector<uint32_t> program_ids() const;

 private:
  explicit InterceptPrograms(netprof_intercept_bpf* skel) : skel_(skel) {}
  netprof_intercept_bpf* skel_ = nullptr;
};

// Adds what to do to a load/attach failure: ENOMEM and EPERM have causes a user can change
// (the memory limit or the map sizes; capabilities), everything else points at --verbose.
Error bpf_failure(const std::string& what, int err);

// A bpf_link (netns or cgroup attachment). The link fd is the attachment: closing it, or
// the process dying, detaches.
class BpfLink {
 public:
  static Expected<BpfLink> attach_netns(bpf_program* program, int netns_fd, const char* what);
  static Expected<BpfLink> attach_cgroup(bpf_program* program, int cgroup_fd, const char* what);
  // A program loaded outside libbpf's object (a pod's sk_lookup copy) to a netns.
  static Expected<BpfLink> attach_netns_fd(int program_fd, int netns_fd, const char* what);
  BpfLink(BpfLink&& other) noexcept;
  BpfLink& operator=(BpfLink&& other) noexcept;
  BpfLink(const BpfLink&) = delete;
  BpfLink& operator=(const BpfLink&) = delete;
  ~BpfLink();
  int fd() const;

 private:
  explicit BpfLink(bpf_link* link) : link_(link) {}
  explicit BpfLink(UniqueFd fd) : raw_(std::move(fd)) {}
  bpf_link* link_ = nullptr;
  UniqueFd raw_;  // a link created with bpf_link_create, not through libbpf's object
};

// sk_msg attached to a SOCKHASH. Kernels before 6.10 have no bpf_link for this, so it is a
// prog_attach that lives as long as the map - which only netprof's fds keep alive.
class MapAttachment {
 public:
  static Expected<MapAttachment> attach(int program_fd, int map_fd, int attach_type,
                                        const char* what);
  MapAttachment(MapAttachment&& other) noexcept;
  MapAttachment& operator=(MapAttachment&& other) noexcept;
  MapAttachment(const MapAttachment&) = delete;
  MapAttachment& operator=(const MapAttachment&) = delete;
  ~MapAttachment();

 private:
  MapAttachment(int program_fd, int map_fd, int type)
      : program_fd_(program_fd), map_fd_(map_fd), type_(type) {}
  void reset();
  int program_fd_ = -1;
  int map_fd_ = -1;
  int type_ = 0;
};

}  // namespace netprof
