/* The one contract between netprof's BPF programs (bpf/netprof_intercept.bpf.c) and user
 * space (user/intercept/). Plain C, included by both sides: every key, value and constant the
 * two sides exchange is declared here once, so nothing is hand-synced.
 *
 * Conventions for every struct below:
 *   - IP addresses are in network byte order, IPv4 in ip[0] with ip[1..3] = 0;
 *   - ports are in HOST byte order (each BPF context stores them differently; the programs
 *     normalise, so user space can build keys from getsockname()/getpeername() directly);
 *   - family is AF_INET (2) or AF_INET6 (10);
 *   - structs are zero-initialised before being filled, padding included, because they are
 *     hashed as raw bytes.
 *
 * The maps (declared in netprof_intercept.bpf.c with a comment each; one set per netprof
 * process, shared by every attached pod). Keys named *_key are struct netprof_*_key below;
 * "attach" = user space adds the pod's entries at attach and deletes them at detach, "load" =
 * once after loading; dialers are user/intercept/pod_dialers.cc; LRU = BPF_MAP_TYPE_LRU_HASH:
 *
 *   map                 type          key              value       writer        reader
 *   pods                HASH          netns cookie     netprof_pod user: attach  all
 *   inbound_ports       HASH          __u16 port       1           user: load    sk_lookup,sock_ops
 *   outbound_ports      HASH          __u16 port       1           user: load    connect4/6
 *   relay_listeners     SOCKHASH      listener_key     socket      user: attach  sk_lookup
 *   upstream_guard      LRU           sock_key         1           in dialer     sk_lookup
 *   guard_cookies       LRU           socket cookie    1           out dialer    connect4/6
 *   orig_dst_by_cookie  LRU           socket cookie    endpoint    connect4/6    sock_ops
 *   orig_dst_by_tuple   LRU           sock_key         endpoint    sock_ops      out dialer
 *   local_peers         SOCKHASH      sock_key         socket      sock_ops      sk_msg
 *   pending_actives     LRU           sock_key         1           sock_ops      sock_ops
 *   counters            PERCPU_ARRAY  netprof_counter  __u64       all           user
 *
 * Sizes: pods = max_pods, relay_listeners = max_pods x workers x 2, the LRU maps =
 * bpf_pending_entries, local_peers = bpf_local_peers (user/intercept/bpf_programs.cc).
 */
#ifndef NETPROF_SHARED_H
#define NETPROF_SHARED_H

#include <linux/types.h>

/* Most ports one direction can target (size of the port maps). */
#define NETPROF_MAX_PORTS 64
/* The maps below are shared by every pod of a netprof process (one loaded object per node):
 * their sizes are node-wide settings that user space sets before load
 * (bpf_map__set_max_entries); these are the compiled-in defaults. */
/* Entries of the LRU maps that track connections in flight (handshakes, not lifetimes). */
#define NETPROF_MAX_PENDING 65536
/* Local sockets the sk_msg fast path can hold at once (two per relayed local hop). */
#define NETPROF_MAX_LOCAL_PEERS 65536
/* Pods attached at once (`netprof attach`: 1). */
#define NETPROF_MAX_PODS 256
/* Relay workers per pod that may own listeners (room for several; sk_lookup spreads
 * connections over the pod's `relay_workers`). */
#define NETPROF_MAX_WORKERS 16
/* The placeholder user space replaces by a pod's netns cookie in its copy of the sk_lookup
 * program ("netprof1" in ASCII): sk_lookup programs cannot call bpf_get_netns_cookie (not
 * even on 6.18), so each pod's netns gets its own copy of netprof_steer_inbound with its
 * cookie as an immediate. Everything else of a pod is map entries. */
#define NETPROF_POD_COOKIE_PLACEHOLDER 0x6e657470726f6631ULL

/* One TCP connection as seen from one of its two sockets. */
struct netprof_tuple {
  __u32 local_ip[4];
  __u32 remote_ip[4];
  __u16 local_port;
  __u16 remote_port;
  __u16 family;
  __u16 pad; /* always 0 */
};

/* One side of a connection: where a client originally wanted to go. */
struct netprof_endpoint {
  __u32 ip[4];
  __u16 port;
  __u16 family;
};

/* A tuple in one network namespace: the same loopback tuple can exist in every pod at once,
 * so every tuple-keyed map of the shared object is keyed by this. */
struct netprof_sock_key {
  __u64 netns_cookie; /* SO_NETNS_COOKIE / bpf_get_netns_cookie of the socket's netns */
  struct netprof_tuple tuple;
};

/* One attached pod, keyed by its netns cookie in the pods map. */
struct netprof_pod {
  /* Where connect4/connect6 send the pod's targeted connections: the relay's outbound
   * listeners inside the pod netns (address in network order, port in host order; port 0 =
   * that family's outbound interception is off). */
  __u32 outbound_ip4;
  __u32 outbound_ip6[4];
  __u16 outbound_port4;
  __u16 outbound_port6;
  /* Relay workers holding inbound listeners for this pod (1..NETPROF_MAX_WORKERS). */
  __u32 relay_workers;
};

/* Key of the relay_listeners SOCKHASH: one inbound listener per pod, worker and family. */
struct netprof_listener_key {
  __u64 netns_cookie;
  __u32 worker; /* 0..relay_workers-1 */
  __u32 slot;   /* enum netprof_listener_slot */
};

/* Slots of the relay_listeners map. The inbound listeners are per family because a
 * socket can only be assigned to a lookup of its own family (or a dual-stack v6 one, which
 * would make getsockname() return v4-mapped addresses). */
enum netprof_listener_slot {
  NETPROF_SLOT_INBOUND_V4 = 0,
  NETPROF_SLOT_INBOUND_V6 = 1,
  NETPROF_SLOT_COUNT = 2,
};

/* Indexes of the counters PERCPU_ARRAY. User space sums the per-CPU values. */
enum netprof_counter {
  NETPROF_CNT_LOOKUP_STEERED = 0,   /* sk_lookup assigned the relay listener */
  NETPROF_CNT_LOOKUP_GUARDED,       /* sk_lookup let a relay upstream SYN reach the app */
  NETPROF_CNT_LOOKUP_FAIL_OPEN,     /* target port but no listener / assign failed */
  NETPROF_CNT_CONNECT_REWRITTEN,    /* connect4/6 sent a connection to the relay */
  NETPROF_CNT_CONNECT_GUARDED,      /* connect4/6 let a relay upstream socket through */
  NETPROF_CNT_ORIG_DST_RECORDED,    /* sock_ops moved an original destination cookie->tuple */
  NETPROF_CNT_ORIG_DST_MISSING,     /* sock_ops saw a relay-bound connect without a record */
  NETPROF_CNT_PEER_ADDED,           /* sock_ops put a local socket in local_peers */
  NETPROF_CNT_PEER_ADD_FAILED,      /* bpf_sock_hash_update refused a socket */
  NETPROF_CNT_MSG_REDIRECTED,       /* sk_msg redirected a message to its local peer */
  NETPROF_CNT_MSG_REDIRECTED_BYTES, /* bytes in those messages */
  NETPROF_CNT_MSG_PASSED,           /* sk_msg found no peer: the message took the TCP stack */
  NETPROF_CNT_COUNT,
};

#endif /* NETPROF_SHARED_H */
