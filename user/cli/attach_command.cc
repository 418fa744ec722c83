#include "cli/attach_command.h"

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/session.h"
#include "intercept/interception.h"
#include "intercept/libbpf_log.h"

namespace netprof {
namespace {

std::string port_text(const std::vector<uint16_t>& ports) {
  std::string text;
  for (const uint16_t p : ports) text += (text.empty() ? "" : ",") + std::to_string(p);
  return text;
}

// Scopes stamped on exchanges, so the report can tell the directions apart.
constexpr uint32_t kInboundScope = 0;
constexpr uint32_t kOutboundScope = 1;

int run_attach(const Settings& settings) {
  if (const std::string error = check_settings(settings, kAttach); !error.empty()) {
    std::cerr << "netprof: " << error << "\n";
    return 2;
  }
  const InterceptSettings& o = settings.intercept;
  set_libbpf_verbose(o.verbose);
  ProfileOptions profile = settings.profile;
  profile.workers = resolve_workers(profile);
  profile.interception_mode = "attach";  // the links live as long as the session
  InterceptOptions options;
  options.workers = static_cast<uint32_t>(profile.workers);
  options.netns_path = o.netns;
  options.cgroup_path = o.cgroup;
  options.skmsg_mode = skmsg_mode(o.skmsg);
  options.ipv4 = o.ipv4;
  options.ipv6 = o.ipv6;
  options.inbound_scope = kInboundScope;
  options.outbound_scope = kOutboundScope;
  // Relay upstreams stay guarded past the relay's own connect timeout (see InboundDialer).
  options.guard_lifetime = std::chrono::milliseconds(
      static_cast<int64_t>(settings.profile.connect_timeout_s * 1000) + 5000);
  options.inbound_ports = o.inbound_ports;
  options.outbound_ports = o.outbound_ports;

  auto interception = Interception::start(options);
  if (!interception) {
    std::cerr << "netprof attach: " << interception.error()
              << "\n  (`netprof check` shows what this kernel supports)\n";
    return 1;
  }
  if (!settings.profile.quiet) {
    std::cerr << "netprof: intercepting netns " << (o.netns.empty() ? "(own)" : o.netns);
    if (!o.inbound_ports.empty()) std::cerr << ", inbound ports " << port_text(o.inbound_ports);
    if (!o.outbound_ports.empty())
      std::cerr << ", outbound ports " << port_text(o.outbound_ports) << " from cgroup "
                << o.cgroup;
    const bool skmsg_on = (*interception)->skmsg_on();
    std::cerr << (skmsg_on ? ", sk_msg on" : ", sk_msg off") << ", " << profile.workers
              << (profile.workers == 1 ? " worker" : " workers") << std::endl;
    for (const std::string& note : (*interception)->notes())
      std::cerr << "netprof: note: " << note << "\n";
    if (!skmsg_on && options.skmsg_mode == SkMsgMode::kAuto)
      std::cerr << "netprof: note: the relay works without sk_msg (loopback TCP instead); "
                   "--skmsg=on forces it, --skmsg=off skips this check\n";
  }
  // The overload guard may detach this one pod (both directions) and re-attach it.
  Interception& pod = **interception;
  const std::string label = o.netns.empty() ? std::string("(own netns)") : o.netns;
  SessionHooks hooks;
  hooks.intercept.pod_of = [](uint32_t scope) -> std::optional<uint32_t> {
    if (scope == kInboundScope || scope == kOutboundScope) return kInboundScope;
    return std::nullopt;
  };
  hooks.intercept.set = [&pod](uint32_t, bool on) {
    const Status status = on ? pod.resume() : pod.suspend();
    return status ? std::string() : status.error();
  };
  hooks.intercept.pods = [label] {
    return std::vector<std::pair<uint32_t, std::string>>{{kInboundScope, label}};
  };
  const int code = run_profile_session(profile, pod.take_listeners(), {}, hooks);
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
  auto* cmd = app.add_subcommand(
      "attach",
      "Profile a pod in place: eBPF steers its connections through the relay (root)");
  auto flags = std::make_shared<SettingFlags>(*cmd, kAttach);
  cmd->callback([flags] {
    Settings settings;
    if (!flags->apply_or_report(settings)) std::exit(2);
    std::exit(run_attach(settings));
  });
}

}  // namespace netprof
