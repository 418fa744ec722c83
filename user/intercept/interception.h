// eBPF interception of one pod: the relay's listening sockets inside the pod's netns, the
// BPF programs that steer the pod's connections to them, and the dialers that take each
// connection on to where it was going. Construct with start(), hand listeners() to the
// relay, destroy to detach. See bpf/netprof_intercept.bpf.c for the design.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "intercept/bpf_programs.h"
#include "intercept/expected.h"
#include "relay/relay.h"

namespace netprof {

// The sk_msg fast path between local sockets. kAuto: on where skmsg_fionread_verdict()
// finds that this kernel's sockmap keeps FIONREAD and receive readiness right (see
// intercept/skmsg_probe.h), off with a note elsewhere; kOn: on even there.
enum class SkMsgMode { kAuto, kOn, kOff };

struct InterceptOptions {
  std::string netns_path;              // the pod's netns; empty = netprof's own
  std::string cgroup_path;             // the pod's cgroup v2; needed for outbound
  std::vector<uint16_t> inbound_ports;   // connections INTO the pod on these local ports
  std::vector<uint16_t> outbound_ports;  // connections FROM the pod's cgroup to these ports
  bool ipv4 = true;
  bool ipv6 = true;
  bool skmsg = true;                   // false: sk_msg off, whatever skmsg_mode says
  SkMsgMode skmsg_mode = SkMsgMode::kAuto;
  uint32_t inbound_scope = 0;          // ListenerSpec::scope of inbound connections
  uint32_t outbound_scope = 1;         // ... and of outbound ones
  // How long a relay upstream stays guarded from sk_lookup: longer than the relay's
  // connect timeout, since SYN retransmissions go through sk_lookup again.
  std::chrono::milliseconds guard_lifetime{15000};
  int backlog = 4096;
};

struct InterceptState;

class Interception {
 public:
  static Expected<std::unique_ptr<Interception>> start(const InterceptOptions& options);
  ~Interception();
  Interception(const Interception&) = delete;
  Interception& operator=(const Interception&) = delete;

  // The relay's listeners (fds are handed over: call once).
  std::vector<ListenerSpec> take_listeners();
  // Non-fatal limits found at start, e.g. "IPv6 outbound off: no ::1 in the pod".
  const std::vector<std::string>& notes() const { return notes_; }
  CounterValues counters() const;
  // What start() decided: sk_msg attached, and the no-op SK_SKB verdict with it (a kernel
  // bug workaround, see bpf/netprof_intercept.bpf.c).
  bool skmsg_on() const { return skmsg_.has_value(); }
  bool skb_pass_on() const { return skb_pass_.has_value(); }
  const InterceptPrograms& programs() const;
  // IDs of the links this object owns (for tests that check a clean detach).
  std::vector<uint32_t> link_ids() const;
  // Where connect4/connect6 send connections ("127.0.0.1:PORT", "[::1]:PORT").
  std::vector<SocketAddress> outbound_listener_addresses() const;

 private:
  Interception() = default;
  std::shared_ptr<InterceptState> state_;
  std::optional<MapAttachment> skmsg_;
  std::optional<MapAttachment> skb_pass_;
  std::vector<BpfLink> links_;
  std::vector<ListenerSpec> listeners_;
  std::vector<SocketAddress> outbound_addresses_;
  std::vector<std::string> notes_;
};

// "80,8080" -> {80, 8080}. Returns an error naming the bad item.
Expected<std::vector<uint16_t>> parse_port_list(const std::string& text);

}  // namespace netprof
