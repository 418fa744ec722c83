// Does this kernel's sockmap keep FIONREAD and receive readiness right for the sockets of
// netprof's sk_msg fast path? Some supported kernels do not (see the top of
// bpf/netprof_intercept.bpf.c), and apps that size reads with FIONREAD (nginx, Java NIO,
// .NET) or wait on epoll would stall behind netprof. The answer is an experiment, not a
// version table: distro kernels backport fixes and regressions alike.
//
// The experiment, in a throwaway network namespace (netprof's own if it cannot make one):
// netprof's own BPF object with only sk_msg attached to local_peers, two loopback
// connections whose receiving sockets are put in local_peers from user space (no cgroup
// attachment, so nothing else on the host is touched), a few bytes each
//   - redirected: sent by a socket of local_peers, so netprof_redirect_local hands them to
//     the peer's receive queue (BPF_F_INGRESS), as between the relay and a local app;
//   - by TCP: sent by a socket outside the map, as bytes that reach a socket of local_peers
//     before its peer joined (or after it left) do;
// and on each receiver: an edge-triggered epoll registered before the send (the wakeup),
// poll(POLLIN) and FIONREAD, once the bytes are verifiably there (MSG_PEEK).
// Everything it creates is gone when it returns; it takes a few milliseconds when the kernel
// is right, at most about half a second when it is not.
#pragma once

#include <string>

namespace netprof {

// What one receiving socket showed, 7 bytes sitting in it.
struct ReceiveCheck {
  bool arrived = false;  // MSG_PEEK saw all the bytes (else the rest says nothing)
  bool wakeup = false;   // an edge-triggered epoll registered before the send fired
  bool pollin = false;   // poll() reports POLLIN
  int fionread = -1;     // what ioctl(FIONREAD) said
  int expected = 0;      // bytes sent
  bool ok() const { return arrived && wakeup && pollin && fionread == expected; }
  std::string describe() const;  // "FIONREAD 0 of 7, POLLIN, no epoll wakeup"
};

// One run of the experiment, with or without the no-op SK_SKB verdict on local_peers.
struct SkMsgRun {
  bool skb_pass = false;
  ReceiveCheck redirected;  // bytes sk_msg redirected into the socket
  ReceiveCheck tcp_path;    // bytes that came by TCP into a socket of local_peers
  bool ok() const { return redirected.ok() && tcp_path.ok(); }
};

struct SkMsgProbe {
  std::string error;         // non-empty: the experiment could not run (why)
  SkMsgRun plain;            // sk_msg only, as netprof attaches it by default
  bool tried_skb_pass = false;
  SkMsgRun with_skb_pass;    // only run when `plain` failed on the TCP path

  // sk_msg may be used: everything right, with the no-op verdict if `needs_skb_pass`.
  bool usable() const { return error.empty() && (plain.ok() || needs_skb_pass()); }
  // The no-op SK_SKB verdict must be attached to local_peers for TCP-path bytes.
  bool needs_skb_pass() const {
    return error.empty() && !plain.ok() && plain.redirected.ok() && tried_skb_pass &&
           with_skb_pass.ok();
  }
  // One line: what is wrong, or how it is right ("... with a no-op SK_SKB verdict").
  std::string summary() const;
};

// Where the kernel bugs are fixed, for messages: 929e30f93125 for redirected bytes, and its
// follow-up 04af4efde58a for the TCP-path bytes that 929e30f93125 broke.
inline constexpr const char* kSkMsgFionreadFix =
    "\"bpf, sockmap: Fix FIONREAD for sockmap\" 929e30f93125 (6.6.128+, 6.12.75+, 6.18.14+, "
    "6.19+) and its follow-up 04af4efde58a";

// Runs the experiment now.
SkMsgProbe probe_skmsg_fionread();
// The first probe_skmsg_fionread() of this process, for every later caller (the kernel does
// not change under a running process).
const SkMsgProbe& skmsg_fionread_verdict();

}  // namespace netprof
