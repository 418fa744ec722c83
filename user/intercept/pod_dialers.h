// The UpstreamDialers of eBPF interception. Both open the upstream socket inside the pod's
// network namespace (so routing, source addresses and policies are the pod's own) and mark
// it so the BPF programs let it through instead of steering it back into the relay.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "intercept/bpf_programs.h"
#include "intercept/netns.h"
#include "relay/upstream_dialer.h"

namespace netprof {

// What the dialers share with the Interception that made them; kept alive by whoever holds
// it last, so a relay that outlives the Interception object still dials safely.
struct InterceptState {
  std::shared_ptr<const InterceptPrograms> programs;  // the node's, shared by every pod
  Netns pod;
  Netns home;
  bool outbound_active = false;  // connect4/6 attached: every upstream needs a cookie guard
  uint64_t netns_cookie = 0;     // the pod's: the netns half of its tuple keys
};

// Inbound (sk_lookup): the accepted socket's local address IS the original destination.
// The upstream binds to that address, port 0, and its 4-tuple goes into upstream_guard
// between bind() and connect(). Guard entries are removed `guard_lifetime` later (longer
// than the relay's connect timeout, so retransmitted SYNs stay guarded), swept on dial().
// Not thread-safe: each relay worker gets its own (InterceptNode::hand_over_listeners).
class InboundDialer final : public UpstreamDialer {
 public:
  InboundDialer(std::shared_ptr<const InterceptState> state,
                std::chrono::milliseconds guard_lifetime);
  ~InboundDialer() override;
  DialResult dial(int client_fd) override;

 private:
  struct Pending {
    std::chrono::steady_clock::time_point expires;
    netprof_sock_key key;
  };
  void sweep(std::chrono::steady_clock::time_point now);
  void remember(const Pending& pending);

  std::shared_ptr<const InterceptState> state_;
  std::chrono::milliseconds guard_lifetime_;
  std::vector<Pending> ring_;  // grows by doubling up to a fixed capacity, never shrinks
  size_t head_ = 0;            // oldest entry
  size_t size_ = 0;
};

// Outbound (cgroup connect4/6): the original destination comes from orig_dst_by_tuple,
// keyed by the accepted socket's own tuple, and is deleted once read. The upstream socket's
// cookie sits in guard_cookies only during connect(), the one call that runs connect4/6.
class OutboundDialer final : public UpstreamDialer {
 public:
  explicit OutboundDialer(std::shared_ptr<const InterceptState> state);
  DialResult dial(int client_fd) override;

 private:
  std::shared_ptr<const InterceptState> state_;
};

// The original destination recorded for the relay's accepted outbound socket; false when
// there is none (someone connected to the outbound listener directly).
bool lookup_original_destination(const InterceptState& state, int accepted_fd,
                                 SocketAddress& out);

}  // namespace netprof
