// Move-only owners of the loaded BPF object (the libbpf skeleton of
// bpf/netprof_intercept.bpf.c) and of each attachment. Destroying an owner detaches or
// unloads; nothing is pinned, so the kernel does the same if the process dies.
#pragma once

#include <array>
#include <cstdint>

#include "intercept/expected.h"
#include "netprof_shared.h"

struct netprof_intercept_bpf;
struct bpf_link;
struct bpf_program;

namespace netprof {

// Set before load (the programs' const volatile globals) and which programs to load at
// all: a program that is not needed is not loaded, so a kernel without its hook still works.
struct ProgramConfig {
  uint64_t netns_cookie = 0;     // 0 = do not filter by netns
  bool inbound = false;          // load sk_lookup
  bool outbound = false;         // load connect4/connect6
  bool sock_ops = false;         // load sock_ops (outbound tuples and/or sk_msg peers)
  bool skmsg = false;            // load sk_msg; sock_ops fills local_peers
  bool skb_pass = false;         // load the no-op SK_SKB verdict (kernel bug workaround)
  uint32_t outbound_ip4 = 0;     // network order
  uint16_t outbound_port4 = 0;   // host order, 0 = no IPv4 outbound
  std::array<uint32_t, 4> outbound_ip6{};
  uint16_t outbound_port6 = 0;
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

  // Sums of the per-CPU counters (index: enum netprof_counter).
  CounterValues counters() const;

 private:
  explicit InterceptPrograms(netprof_intercept_bpf* skel) : skel_(skel) {}
  netprof_intercept_bpf* skel_ = nullptr;
};

// A bpf_link (netns or cgroup attachment). The link fd is the attachment: closing it, or
// the process dying, detaches.
class BpfLink {
 public:
  static Expected<BpfLink> attach_netns(bpf_program* program, int netns_fd, const char* what);
  static Expected<BpfLink> attach_cgroup(bpf_program* program, int cgroup_fd, const char* what);
  BpfLink(BpfLink&& other) noexcept;
  BpfLink& operator=(BpfLink&& other) noexcept;
  BpfLink(const BpfLink&) = delete;
  BpfLink& operator=(const BpfLink&) = delete;
  ~BpfLink();
  int fd() const;

 private:
  explicit BpfLink(bpf_link* link) : link_(link) {}
  bpf_link* link_ = nullptr;
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
