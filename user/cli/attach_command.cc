#include "cli/attach_command.h"

#include <cstdlib>
#include <iostream>
#include <memory>

#include "cli/session.h"
#include "intercept/interception.h"
#include "intercept/libbpf_log.h"

namespace netprof {
namespace {

struct AttachOptions {
  std::string netns;
  std::string cgroup;
  std::string inbound_ports;
  std::string outbound_ports;
  std::string skmsg = "auto";
  bool no_skmsg = false;
  bool no_ipv4 = false;
  bool no_ipv6 = false;
  bool verbose = false;
  ProfileOptions profile;
};

// Scopes stamped on exchanges, so the report can tell the directions apart.
constexpr uint32_t kInboundScope = 0;
constexpr uint32_t kOutboundScope = 1;

int run_attach(const AttachOptions& o) {
  if (const std::string error = check_profile_options(o.profile); !error.empty()) {
    std::cerr << "netprof: " << error << "\n";
    return 2;
  }
  set_libbpf_verbose(o.verbose);
  InterceptOptions options;
  options.netns_path = o.netns;
  options.cgroup_path = o.cgroup;
  options.skmsg_mode = o.no_skmsg || o.skmsg == "off" ? SkMsgMode::kOff
                       : o.skmsg == "on"                ? SkMsgMode::kOn
                                                        : SkMsgMode::kAuto;
  options.ipv4 = !o.no_ipv4;
  options.ipv6 = !o.no_ipv6;
  options.inbound_scope = kInboundScope;
  options.outbound_scope = kOutboundScope;
  // Relay upstreams stay guarded past the relay's own connect timeout (see InboundDialer).
  options.guard_lifetime =
      std::chrono::milliseconds(static_cast<int64_t>(o.profile.connect_timeout_s * 1000) + 5000);
  auto inbound = parse_port_list(o.inbound_ports);
  auto outbound = parse_port_list(o.outbound_ports);
  if (!inbound || !outbound) {
    std::cerr << "netprof attach: " << (!inbound ? inbound.error() : outbound.error()) << "\n";
    return 2;
  }
  options.inbound_ports = *inbound;
  options.outbound_ports = *outbound;

  auto interception = Interception::start(options);
  if (!interception) {
    std::cerr << "netprof attach: " << interception.error()
              << "\n  (`netprof check` shows what this kernel supports)\n";
    return 1;
  }
  if (!o.profile.quiet) {
    std::cerr << "netprof: intercepting netns " << (o.netns.empty() ? "(own)" : o.netns);
    if (!o.inbound_ports.empty()) std::cerr << ", inbound ports " << o.inbound_ports;
    if (!o.outbound_ports.empty())
      std::cerr << ", outbound ports " << o.outbound_ports << " from cgroup " << o.cgroup;
    const bool skmsg_on = (*interception)->skmsg_on();
    std::cerr << (skmsg_on ? ", sk_msg on" : ", sk_msg off") << std::endl;
    for (const std::string& note : (*interception)->notes())
      std::cerr << "netprof: note: " << note << "\n";
    if (!skmsg_on && options.skmsg_mode == SkMsgMode::kAuto)
      std::cerr << "netprof: note: the relay works without sk_msg (loopback TCP instead); "
                   "--skmsg=on forces it, --skmsg=off skips this check\n";
  }
  ProfileOptions profile = o.profile;
  profile.interception_mode = "attach";  // the links live as long as the session
  const int code = run_profile_session(profile, (*interception)->take_listeners());
  if (o.verbose) {
    const CounterValues counters = (*interception)->counters();
    std::cerr << "netprof: bpf counters: steered=" << counters[NETPROF_CNT_LOOKUP_STEERED]
              << " guarded=" << counters[NETPROF_CNT_LOOKUP_GUARDED]
              << " fail_open=" << counters[NETPROF_CNT_LOOKUP_FAIL_OPEN]
              << " connect_rewritten=" << counters[NETPROF_CNT_CONNECT_REWRITTEN]
              << " msg_redirected=" << counters[NETPROF_CNT_MSG_REDIRECTED] << "\n";
  }
  return code;  // ~Interception detaches: new connections go straight to the app again
}

}  // namespace

void register_attach_command(CLI::App& app) {
  auto options = std::make_shared<AttachOptions>();
  auto* cmd = app.add_subcommand(
      "attach",
      "Profile a pod in place: eBPF steers its connections through the relay (root)");
  cmd->add_option("--netns", options->netns,
                  "the pod's network namespace: /var/run/netns/NAME or /proc/PID/ns/net "
                  "(default: netprof's own)");
  cmd->add_option("--cgroup", options->cgroup,
                  "the pod's cgroup v2 directory (absolute, or relative to the cgroup2 mount); "
                  "needed for --outbound-ports");
  cmd->add_option("--inbound-ports", options->inbound_ports,
                  "comma-separated ports of the pod whose incoming connections to profile");
  cmd->add_option("--outbound-ports", options->outbound_ports,
                  "comma-separated remote ports whose connections from the cgroup to profile");
  cmd->add_option("--skmsg", options->skmsg,
                  "the sk_msg fast path between local sockets: auto (on where this kernel's "
                  "sockmap keeps FIONREAD and readiness right, see `netprof check`), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd->add_flag("--no-skmsg", options->no_skmsg, "the same as --skmsg=off");
  cmd->add_flag("--no-ipv4", options->no_ipv4, "intercept IPv6 only");
  cmd->add_flag("--no-ipv6", options->no_ipv6, "intercept IPv4 only");
  cmd->add_flag("-v,--verbose", options->verbose, "print libbpf's log and the BPF counters");
  add_profile_options(*cmd, options->profile);
  cmd->callback([options] { std::exit(run_attach(*options)); });
}

}  // namespace netprof
