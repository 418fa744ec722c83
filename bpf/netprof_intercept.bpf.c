// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * netprof interception: steer a pod's TCP connections through the user-space relay without
 * touching the app, its port or its clients.
 *
 * Design (why each piece is what it is):
 *
 *  INBOUND  client --SYN dst=POD:P--> [pod netns] sk_lookup(netprof_steer_inbound)
 *             P targeted, not a relay upstream SYN  -> bpf_sk_assign(relay listener)
 *           relay accepts R; getsockname(R) is still POD:P (sk_lookup never rewrites packets)
 *           relay dials U from POD:ephemeral to POD:P, after writing U's 4-tuple to
 *           upstream_guard between bind() and connect(); sk_lookup sees that tuple and passes
 *           the SYN on to the app's own listener.
 *     Why sk_lookup: it works for remote clients (veth) and local ones (loopback) alike, needs
 *     no NAT and no conntrack, leaves the app's listener alone, and a lookup program that is
 *     not attached any more simply means "normal socket lookup" - the fail-open we want.
 *     Why a 4-tuple guard: sk_lookup only sees the packet (no originating socket, no mark),
 *     so the relay has to be recognisable from addresses. A reserved source address would
 *     have to be added to the pod; the tuple guard needs nothing in the pod.
 *
 *  OUTBOUND client in the pod cgroup: connect(REMOTE:Q), Q targeted
 *           cgroup/connect4|6(netprof_connect4|6): orig_dst_by_cookie[cookie] = REMOTE:Q,
 *             destination rewritten to the relay's outbound listener (loopback in the pod)
 *           sock_ops ACTIVE_ESTABLISHED: the client's 4-tuple is known now, so the record
 *             moves to orig_dst_by_tuple[relay's view of the tuple]; the relay looks it up
 *             with getsockname/getpeername of the accepted socket and deletes it.
 *           relay dials REMOTE:Q from the pod netns; its socket cookie is in guard_cookies
 *           so connect4|6 leave it alone even when netprof itself runs inside that cgroup.
 *     Why a map instead of SO_ORIGINAL_DST via cgroup/getsockopt: getsockopt programs run on
 *     the cgroup of the socket, and the relay's accepted sockets live in netprof's cgroup,
 *     not the pod's; a map lookup by tuple needs no extra attachment.
 *
 *  SK_MSG   sock_ops (ACTIVE/PASSIVE_ESTABLISHED) puts both ends of a local relayed hop
 *           (local client <-> relay, relay upstream <-> app, pod client <-> outbound relay
 *           listener) in local_peers, keyed by their own tuple; netprof_redirect_local
 *           (sk_msg on local_peers) looks up the mirrored tuple and hands the bytes straight
 *           to the peer's receive queue (BPF_F_INGRESS), skipping loopback TCP. Read-side
 *           semantics stay the same for both ends; the relay cannot tell the difference. It
 *           is off when skmsg_enabled is 0: then no socket enters the SOCKHASH at all.
 *     Kernel bugs (user/intercept/skmsg_probe.h tests for them at run time): before
 *           "bpf, sockmap: Fix FIONREAD for sockmap" (929e30f93125) FIONREAD does not count
 *           redirected bytes (6.1 and every kernel without it), so sk_msg stays off there
 *           unless forced. Some kernels carrying that commit without its follow-up fix
 *           (04af4efde58a) instead count ONLY redirected bytes on a socket of a SOCKHASH that
 *           has no SK_SKB verdict, and may miss the wakeup for bytes that come by TCP;
 *           netprof_skb_pass attached to local_peers routes those bytes through the psock,
 *           which repairs both, and is attached only where the probe shows it is needed.
 *
 *  ONE OBJECT PER NODE this object is loaded once per netprof process and shared by every pod
 *           it attaches: what differs per pod is map entries keyed by the pod's netns cookie
 *           (pods, relay_listeners, and the netns half of every tuple key), one copy of
 *           netprof_steer_inbound with the pod's cookie as an immediate (sk_lookup programs
 *           cannot call bpf_get_netns_cookie), and links: sk_lookup on the pod's netns,
 *           sock_ops and connect4/6 on its cgroup. Connections of a netns without a pods
 *           entry are never touched.
 *
 *  FAIL OPEN every attachment is a bpf_link (sk_lookup to the netns, cgroup programs to the
 *           cgroup) or hangs off a map (sk_msg on local_peers) that only netprof's fds keep
 *           alive; nothing is pinned. If netprof dies, even by SIGKILL, the kernel closes the
 *           fds, the links detach, and new connections take the normal path.
 *
 * Byte orders: see netprof_shared.h (keys carry ports in host order).
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "netprof_shared.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- configuration, set by user space between open and load (node-wide) ---- */

/* 1 = sock_ops fills local_peers and sk_msg redirects; 0 = sockets never enter a SOCKHASH. */
const volatile __u8 skmsg_enabled = 0;

/* ---- maps ---- */

/* Inbound target ports. key: port (host order); value: 1.
 * Written by user space before attach; read by sk_lookup and sock_ops. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, NETPROF_MAX_PORTS);
  __type(key, __u16);
  __type(value, __u8);
} inbound_ports SEC(".maps");

/* Outbound target ports (remote ports whose connects go to the relay). key: port (host
 * order); value: 1. Written by user space before attach; read by connect4/connect6. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, NETPROF_MAX_PORTS);
  __type(key, __u16);
  __type(value, __u8);
} outbound_ports SEC(".maps");

/* The attached pods. key: the pod's netns cookie; value: netprof_pod. Written by user space
 * when it attaches a pod (before its links) and deleted when it detaches it; read by every
 * program: a netns without an entry is left alone. Sized max_pods by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, NETPROF_MAX_PODS);
  __type(key, __u64);
  __type(value, struct netprof_pod);
} pods SEC(".maps");

/* The relay's inbound listening sockets. key: netprof_listener_key (pod netns cookie, relay
 * worker, family slot); value: socket. Written by user space (socket fd) when it attaches a
 * pod, deleted when it detaches it (the kernel also drops a socket that closes); read by
 * sk_lookup. Sized max_pods * 2 slots (* workers) by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, NETPROF_MAX_PODS * NETPROF_SLOT_COUNT);
  __type(key, struct netprof_listener_key);
  __type(value, __u64);
} relay_listeners SEC(".maps");

/* Relay upstream connections that must reach the app, not the relay. key: netprof_sock_key,
 * the pod's netns and the tuple as the app's side sees it (local = app address:port,
 * remote = relay source address:port); value: 1.
 * Written by the inbound dialer between bind() and connect(), deleted by it once the
 * handshake is long over; read by sk_lookup. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, NETPROF_MAX_PENDING);
  __type(key, struct netprof_sock_key);
  __type(value, __u8);
} upstream_guard SEC(".maps");

/* Relay upstream sockets that connect4/connect6 must not rewrite. key: socket cookie
 * (SO_COOKIE); value: 1. Written by the outbound dialer before connect(), deleted by it
 * later; read by connect4/connect6 and sock_ops. Cookies are never reused. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, NETPROF_MAX_PENDING);
  __type(key, __u64);
  __type(value, __u8);
} guard_cookies SEC(".maps");

/* Original destination of a rewritten connect, until its 4-tuple exists. key: socket
 * cookie of the client socket; value: netprof_endpoint. Written by connect4/connect6; read
 * and deleted by sock_ops at ACTIVE_ESTABLISHED. LRU: a connect that never completes ages out. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, NETPROF_MAX_PENDING);
  __type(key, __u64);
  __type(value, struct netprof_endpoint);
} orig_dst_by_cookie SEC(".maps");

/* Original destination of an established relayed outbound connection. key: netprof_sock_key,
 * the pod's netns and the tuple as the relay's accepted socket sees it (local = outbound
 * listener, remote = client); value: netprof_endpoint. Written by sock_ops; read and deleted
 * by the outbound dialer. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, NETPROF_MAX_PENDING);
  __type(key, struct netprof_sock_key);
  __type(value, struct netprof_endpoint);
} orig_dst_by_tuple SEC(".maps");

/* Both ends of local relayed hops, for sk_msg. key: netprof_sock_key, the socket's netns and
 * its own tuple (loopback tuples repeat across pods); value: socket.
 * Written by sock_ops (when skmsg_enabled); the kernel removes a socket when it closes; read
 * by sk_msg (bpf_msg_redirect_hash), which user space attaches to this map. */
struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, NETPROF_MAX_LOCAL_PEERS);
  __type(key, struct netprof_sock_key);
  __type(value, __u64);
} local_peers SEC(".maps");

/* Active ends of local hops that just joined local_peers, waiting for their passive peer.
 * key: netprof_sock_key of the active socket; value: 1. Written by sock_ops at ACTIVE_ESTABLISHED; read
 * and deleted by sock_ops at PASSIVE_ESTABLISHED (sock_ops cannot look sockets up in a
 * SOCKHASH: that needs bpf_sk_release, which it may not call). LRU: unanswered ones age out. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, NETPROF_MAX_PENDING);
  __type(key, struct netprof_sock_key);
  __type(value, __u8);
} pending_actives SEC(".maps");

/* Event counters, node-wide (all pods). key: enum netprof_counter; value: count on this CPU.
 * Written by every program; read by user space (tests, check, verbose logs). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, NETPROF_CNT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

/* ---- helpers ---- */

static __always_inline void count(__u32 index, __u64 amount) {
  __u64* value = bpf_map_lookup_elem(&counters, &index);
  if (value) *value += amount;
}

static __always_inline int is_port_in(void* ports, __u16 port) {
  return bpf_map_lookup_elem(ports, &port) != 0;
}

/* The pod netns cookie of this copy of the sk_lookup program: an ld_imm64 of the placeholder
 * that user space replaces per pod (see NETPROF_POD_COOKIE_PLACEHOLDER). Inline asm keeps
 * the compiler from folding the constant into other instructions. */
static __always_inline __u64 pod_cookie_immediate(void) {
  __u64 cookie;
  asm volatile("%0 = 0x6e657470726f6631 ll" : "=r"(cookie));
  return cookie;
}

static __always_inline void mirror(const struct netprof_tuple* in, struct netprof_tuple* out) {
  __builtin_memset(out, 0, sizeof(*out));
  out->family = in->family;
  out->local_port = in->remote_port;
  out->remote_port = in->local_port;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    out->local_ip[i] = in->remote_ip[i];
    out->remote_ip[i] = in->local_ip[i];
  }
}

static __always_inline int same_ip(const __u32* a, const __u32* b) {
  return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* A hop whose far end is on this host: loopback, or a connection to one of our own
 * addresses (the kernel then picks that address as the source). */
static __always_inline int is_local_hop(const struct netprof_tuple* t) {
  if (same_ip(t->local_ip, t->remote_ip)) return 1;
  if (t->family == AF_INET) return (bpf_ntohl(t->remote_ip[0]) >> 24) == 127;
  return t->remote_ip[0] == 0 && t->remote_ip[1] == 0 && t->remote_ip[2] == 0 &&
         t->remote_ip[3] == bpf_htonl(1);
}

static __always_inline int is_v4_mapped(const __u32* ip) {
  return ip[0] == 0 && ip[1] == 0 && ip[2] == bpf_htonl(0xffff);
}

/* A dual-stack IPv6 socket talking to an IPv4 peer (an app listening on [::]) reports
 * ::ffff:a.b.c.d addresses; its peer is a plain IPv4 socket. Keys use the IPv4 form so the
 * two ends of the hop find each other. */
static __always_inline void normalize_v4_mapped(struct netprof_tuple* t) {
  if (t->family != AF_INET6 || !is_v4_mapped(t->local_ip) || !is_v4_mapped(t->remote_ip))
    return;
  t->family = AF_INET;
  t->local_ip[0] = t->local_ip[3];
  t->remote_ip[0] = t->remote_ip[3];
  t->local_ip[1] = t->local_ip[2] = t->local_ip[3] = 0;
  t->remote_ip[1] = t->remote_ip[2] = t->remote_ip[3] = 0;
}

/* ---- inbound: sk_lookup ---- */

/* Which relay worker a new connection goes to: a hash of its whole 4-tuple (murmur3's
 * finaliser over the words), so clients behind one address, or one port range, still
 * spread. Every SYN retransmission of a connection hashes the same: it stays on its worker. */
static __always_inline __u32 tuple_hash(const struct netprof_tuple* t) {
  __u32 h = 0x9e3779b9;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    h = (h ^ t->remote_ip[i]) * 0x01000193;
    h = (h ^ t->local_ip[i]) * 0x01000193;
  }
  h ^= ((__u32)t->remote_port << 16) | t->local_port;
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

SEC("sk_lookup")
int netprof_steer_inbound(struct bpf_sk_lookup* ctx) {
  if (ctx->protocol != IPPROTO_TCP) return SK_PASS;
  __u16 port = (__u16)ctx->local_port;
  if (!is_port_in(&inbound_ports, port)) return SK_PASS;

  struct netprof_sock_key k;
  __builtin_memset(&k, 0, sizeof(k));
  k.netns_cookie = pod_cookie_immediate();
  struct netprof_tuple* t = &k.tuple;
  t->family = (__u16)ctx->family;
  t->local_port = port;
  t->remote_port = bpf_ntohs(ctx->remote_port);
  struct netprof_listener_key lk;
  __builtin_memset(&lk, 0, sizeof(lk));
  lk.netns_cookie = k.netns_cookie;
  if (ctx->family == AF_INET) {
    t->local_ip[0] = ctx->local_ip4;
    t->remote_ip[0] = ctx->remote_ip4;
    lk.slot = NETPROF_SLOT_INBOUND_V4;
  } else if (ctx->family == AF_INET6) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      t->local_ip[i] = ctx->local_ip6[i];
      t->remote_ip[i] = ctx->remote_ip6[i];
    }
    lk.slot = NETPROF_SLOT_INBOUND_V6;
  } else {
    return SK_PASS;
  }

  if (bpf_map_lookup_elem(&upstream_guard, &k)) {
    count(NETPROF_CNT_LOOKUP_GUARDED, 1);
    return SK_PASS;
  }
  struct netprof_pod* pod = bpf_map_lookup_elem(&pods, &k.netns_cookie);
  if (!pod) {
    count(NETPROF_CNT_LOOKUP_FAIL_OPEN, 1);
    return SK_PASS;
  }
  /* Spread over the pod's relay workers by 4-tuple hash. */
  __u32 workers = pod->relay_workers;
  if (workers > 1 && workers <= NETPROF_MAX_WORKERS) lk.worker = tuple_hash(t) % workers;
  struct bpf_sock* listener = bpf_map_lookup_elem(&relay_listeners, &lk);
  if (!listener) {
    count(NETPROF_CNT_LOOKUP_FAIL_OPEN, 1);
    return SK_PASS;
  }
  long err = bpf_sk_assign(ctx, listener, 0);
  bpf_sk_release(listener);
  count(err ? NETPROF_CNT_LOOKUP_FAIL_OPEN : NETPROF_CNT_LOOKUP_STEERED, 1);
  return SK_PASS;
}

/* ---- outbound: cgroup connect4/connect6 ---- */

/* Common part of both connect hooks; returns 1 when the connect must go to the relay. */
static __always_inline int record_outbound(struct bpf_sock_addr* ctx,
                                           const struct netprof_endpoint* orig) {
  if (ctx->type != 1 /* SOCK_STREAM */ || ctx->protocol != IPPROTO_TCP) return 0;
  if (!is_port_in(&outbound_ports, orig->port)) return 0;
  __u64 cookie = bpf_get_socket_cookie(ctx);
  if (bpf_map_lookup_elem(&guard_cookies, &cookie)) {
    count(NETPROF_CNT_CONNECT_GUARDED, 1);
    return 0;
  }
  if (bpf_map_update_elem(&orig_dst_by_cookie, &cookie, orig, BPF_ANY)) return 0;
  count(NETPROF_CNT_CONNECT_REWRITTEN, 1);
  return 1;
}

/* The pod whose netns the connecting socket is in; NULL: not an attached pod's netns. */
static __always_inline struct netprof_pod* pod_of_netns(__u64 netns_cookie) {
  return bpf_map_lookup_elem(&pods, &netns_cookie);
}

SEC("cgroup/connect4")
int netprof_connect4(struct bpf_sock_addr* ctx) {
  struct netprof_pod* pod = pod_of_netns(bpf_get_netns_cookie(ctx));
  if (!pod || !pod->outbound_port4) return 1;
  struct netprof_endpoint orig;
  __builtin_memset(&orig, 0, sizeof(orig));
  orig.family = AF_INET;
  orig.ip[0] = ctx->user_ip4;
  orig.port = bpf_ntohs((__u16)ctx->user_port);
  if (record_outbound(ctx, &orig)) {
    ctx->user_ip4 = pod->outbound_ip4;
    ctx->user_port = bpf_htons(pod->outbound_port4);
  }
  return 1; /* 1 = allow the connect */
}

SEC("cgroup/connect6")
int netprof_connect6(struct bpf_sock_addr* ctx) {
  struct netprof_pod* pod = pod_of_netns(bpf_get_netns_cookie(ctx));
  if (!pod || !pod->outbound_port6) return 1;
  struct netprof_endpoint orig;
  __builtin_memset(&orig, 0, sizeof(orig));
  orig.family = AF_INET6;
  orig.ip[0] = ctx->user_ip6[0];
  orig.ip[1] = ctx->user_ip6[1];
  orig.ip[2] = ctx->user_ip6[2];
  orig.ip[3] = ctx->user_ip6[3];
  orig.port = bpf_ntohs((__u16)ctx->user_port);
  /* v4-mapped destinations (::ffff:a.b.c.d) take the IPv4 path inside the kernel without
   * running connect4; rewriting them to a v6 listener would break them, so leave them. */
  if (is_v4_mapped(orig.ip)) return 1;
  if (record_outbound(ctx, &orig)) {
    ctx->user_ip6[0] = pod->outbound_ip6[0];
    ctx->user_ip6[1] = pod->outbound_ip6[1];
    ctx->user_ip6[2] = pod->outbound_ip6[2];
    ctx->user_ip6[3] = pod->outbound_ip6[3];
    ctx->user_port = bpf_htons(pod->outbound_port6);
  }
  return 1;
}

/* ---- sock_ops: original destination by tuple, and the sk_msg peer table ---- */

static __always_inline int is_outbound_listener(const struct netprof_pod* pod,
                                                const struct netprof_tuple* t, int remote) {
  const __u32* ip = remote ? t->remote_ip : t->local_ip;
  __u16 port = remote ? t->remote_port : t->local_port;
  if (t->family == AF_INET)
    return pod->outbound_port4 && port == pod->outbound_port4 && ip[0] == pod->outbound_ip4;
  return pod->outbound_port6 && port == pod->outbound_port6 && ip[0] == pod->outbound_ip6[0] &&
         ip[1] == pod->outbound_ip6[1] && ip[2] == pod->outbound_ip6[2] &&
         ip[3] == pod->outbound_ip6[3];
}

static __always_inline void record_tuple(struct bpf_sock_ops* skops,
                                         const struct netprof_sock_key* k) {
  __u64 cookie = bpf_get_socket_cookie(skops);
  struct netprof_endpoint* orig = bpf_map_lookup_elem(&orig_dst_by_cookie, &cookie);
  if (!orig) {
    count(NETPROF_CNT_ORIG_DST_MISSING, 1);
    return;
  }
  struct netprof_sock_key relay_view;
  relay_view.netns_cookie = k->netns_cookie;
  mirror(&k->tuple, &relay_view.tuple);
  if (bpf_map_update_elem(&orig_dst_by_tuple, &relay_view, orig, BPF_ANY) == 0)
    count(NETPROF_CNT_ORIG_DST_RECORDED, 1);
  bpf_map_delete_elem(&orig_dst_by_cookie, &cookie);
}

static __always_inline long add_peer(struct bpf_sock_ops* skops, struct netprof_sock_key* k) {
  long err = bpf_sock_hash_update(skops, &local_peers, k, BPF_ANY);
  count(err ? NETPROF_CNT_PEER_ADD_FAILED : NETPROF_CNT_PEER_ADDED, 1);
  return err;
}

static __always_inline void add_active_peer(struct bpf_sock_ops* skops,
                                            struct netprof_sock_key* k) {
  const __u8 present = 1;
  if (add_peer(skops, k) == 0) bpf_map_update_elem(&pending_actives, k, &present, BPF_ANY);
}

/* The passive end joins only when its active peer is already there (on a local hop the
 * client's ACTIVE_ESTABLISHED runs before the server's PASSIVE_ESTABLISHED), so relay
 * sockets facing remote clients never pay for sk_msg. */
static __always_inline void add_passive_peer(struct bpf_sock_ops* skops,
                                             struct netprof_sock_key* k) {
  struct netprof_sock_key peer;
  peer.netns_cookie = k->netns_cookie;
  mirror(&k->tuple, &peer.tuple);
  if (!bpf_map_lookup_elem(&pending_actives, &peer)) return;
  bpf_map_delete_elem(&pending_actives, &peer);
  add_peer(skops, k);
}

SEC("sockops")
int netprof_sock_ops(struct bpf_sock_ops* skops) {
  __u32 op = skops->op;
  if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
    return 1;
  struct netprof_sock_key k;
  __builtin_memset(&k, 0, sizeof(k));
  k.netns_cookie = bpf_get_netns_cookie(skops);
  /* Sockets of a netns that is not an attached pod's are left alone (the cgroup may hold
   * processes of any netns; netprof's own cgroup holds the relay's sockets of every pod,
   * each in its pod's netns). */
  struct netprof_pod* pod = pod_of_netns(k.netns_cookie);
  if (!pod) return 1;
  struct netprof_tuple* t = &k.tuple;
  t->family = (__u16)skops->family;
  t->local_port = (__u16)skops->local_port;
  /* remote_port holds the big-endian port in its upper 16 bits on little-endian hosts. */
  t->remote_port = (__u16)(bpf_ntohl(skops->remote_port) & 0xffff);
  if (skops->family == AF_INET) {
    t->local_ip[0] = skops->local_ip4;
    t->remote_ip[0] = skops->remote_ip4;
  } else if (skops->family == AF_INET6) {
    t->local_ip[0] = skops->local_ip6[0];
    t->local_ip[1] = skops->local_ip6[1];
    t->local_ip[2] = skops->local_ip6[2];
    t->local_ip[3] = skops->local_ip6[3];
    t->remote_ip[0] = skops->remote_ip6[0];
    t->remote_ip[1] = skops->remote_ip6[1];
    t->remote_ip[2] = skops->remote_ip6[2];
    t->remote_ip[3] = skops->remote_ip6[3];
  } else {
    return 1;
  }
  normalize_v4_mapped(t);

  if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
    if (is_outbound_listener(pod, t, 1)) {
      record_tuple(skops, &k);
      if (skmsg_enabled) add_active_peer(skops, &k);
    } else if (skmsg_enabled && is_port_in(&inbound_ports, t->remote_port) &&
               is_local_hop(t)) {
      add_active_peer(skops, &k);
    }
  } else if (skmsg_enabled &&
             (is_outbound_listener(pod, t, 0) || is_port_in(&inbound_ports, t->local_port))) {
    add_passive_peer(skops, &k);
  }
  return 1;
}

/* ---- sk_msg: local fast path ---- */

SEC("sk_msg")
int netprof_redirect_local(struct sk_msg_md* msg) {
  struct netprof_sock_key k;
  __builtin_memset(&k, 0, sizeof(k));
  /* Both ends of a local hop are in the same netns (the relay's sockets of a pod live in
   * the pod's netns), so the peer's key carries this socket's netns cookie. */
  k.netns_cookie = bpf_get_netns_cookie(msg);
  struct netprof_tuple* peer = &k.tuple;
  peer->family = (__u16)msg->family;
  peer->local_port = (__u16)(bpf_ntohl(msg->remote_port) & 0xffff);
  peer->remote_port = (__u16)msg->local_port;
  if (msg->family == AF_INET) {
    peer->local_ip[0] = msg->remote_ip4;
    peer->remote_ip[0] = msg->local_ip4;
  } else {
    peer->local_ip[0] = msg->remote_ip6[0];
    peer->local_ip[1] = msg->remote_ip6[1];
    peer->local_ip[2] = msg->remote_ip6[2];
    peer->local_ip[3] = msg->remote_ip6[3];
    peer->remote_ip[0] = msg->local_ip6[0];
    peer->remote_ip[1] = msg->local_ip6[1];
    peer->remote_ip[2] = msg->local_ip6[2];
    peer->remote_ip[3] = msg->local_ip6[3];
    normalize_v4_mapped(peer);
  }
  __u32 size = msg->size;
  if (bpf_msg_redirect_hash(msg, &local_peers, &k, BPF_F_INGRESS) == SK_PASS) {
    count(NETPROF_CNT_MSG_REDIRECTED, 1);
    count(NETPROF_CNT_MSG_REDIRECTED_BYTES, size);
  } else {
    /* No peer (it closed, or this hop is not local): the bytes take the normal path. */
    count(NETPROF_CNT_MSG_PASSED, 1);
  }
  return SK_PASS;
}

/* A verdict that passes every skb unchanged. Its attachment to local_peers is the point: on
 * kernels with the FIONREAD regression described at the top, sockets of a map with a verdict
 * account their TCP-path bytes where FIONREAD and poll look. Attached only where needed. */
SEC("sk_skb") /* attached as BPF_SK_SKB_VERDICT (5.13+): no strparser */
int netprof_skb_pass(struct __sk_buff* skb) {
  (void)skb;
  return SK_PASS;
}
