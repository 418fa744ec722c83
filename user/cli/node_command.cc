#include "cli/node_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>

#include "cli/session.h"
#include "base/cgroup_v2.h"
#include "intercept/libbpf_log.h"
#include "node/node_agent.h"
#include "node/node_config.h"
#include "node/pod_identity.h"
#include "node/pod_watcher.h"
#include "stats/scope_registry.h"

extern char** environ;

namespace netprof {
namespace {

struct NodeFlags {
  std::string config_file;
  std::unique_ptr<SettingFlags> settings;  // every node setting (settings/setting_table.h)
};

std::map<std::string, std::string> netprof_environment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const size_t eq = text.find('=');
    if (eq != std::string::npos && text.compare(0, 8, "NETPROF_") == 0)
      env[text.substr(0, eq)] = text.substr(eq + 1);
  }
  return env;
}

Expected<std::string> cgroup_root(const NodeConfig& c) {
  if (c.node.cgroup_root.empty()) return cgroup2_mount_point();
  // The host's /sys/fs/cgroup: cgroup2 itself, or a tmpfs of v1 controllers with cgroup2 at
  // unified/ (hybrid nodes); runtimes put every container in the cgroup2 tree either way.
  auto dir = cgroup2_hierarchy_at(c.node.cgroup_root);
  if (!dir) return Error{"cgroup_root: " + dir.error()};
  return dir;
}

// What the node agent needs of the settings: the interception of every pod and the agent's
// own limits.
NodeAgentOptions agent_options_of(const Settings& config, size_t workers) {
  const NodeSettings& node = config.node;
  const InterceptSettings& intercept = config.intercept;
  NodeAgentOptions agent_options;
  agent_options.intercept.workers = static_cast<uint32_t>(workers);
  agent_options.intercept.inbound_ports = intercept.inbound_ports;
  agent_options.intercept.outbound_ports = intercept.outbound_ports;
  agent_options.intercept.ipv4 = intercept.ipv4;
  agent_options.intercept.ipv6 = intercept.ipv6;
  agent_options.intercept.skmsg_mode = skmsg_mode(intercept.skmsg);
  agent_options.intercept.skmsg = agent_options.intercept.skmsg_mode != SkMsgMode::kOff;
  // Relay upstreams stay guarded past the relay's own connect timeout (see InboundDialer).
  agent_options.intercept.guard_lifetime = std::chrono::milliseconds(
      static_cast<int64_t>(config.profile.connect_timeout_s * 1000) + 5000);
  agent_options.max_pods = node.max_pods;
  agent_options.intercept.map_sizes.pending = static_cast<uint32_t>(node.bpf_pending_entries);
  agent_options.intercept.map_sizes.local_peers = static_cast<uint32_t>(node.bpf_local_peers);
  agent_options.host_netns = node.host_netns;
  agent_options.pod_logs_dir = node.pod_logs_dir;
  agent_options.expire_after =
      std::chrono::milliseconds(static_cast<int64_t>(node.expire_after_s * 1000));
  return agent_options;
}

int run_node(const NodeFlags& flags) {
  const std::string config_file =
      !flags.config_file.empty() ? flags.config_file : netprof_environment()["NETPROF_CONFIG"];
  std::vector<std::string> notes;
  auto config = load_node_config(
      config_file, netprof_environment(),
      [&flags](Settings& s, std::vector<std::string>& n) { return flags.settings->apply(s, n); },
      notes);
  for (const std::string& note : notes) std::cerr << "netprof: note: " << note << "\n";
  if (!config) {
    std::cerr << "netprof node: invalid configuration: " << config.error() << "\n";
    return 2;
  }
  auto root = cgroup_root(*config);
  if (!root) {
    std::cerr << "netprof node: " << root.error() << "\n";
    return 2;
  }
  // hostNetwork pods share the node's netns; attaching there would steer the node's own
  // traffic. The node's netns (/proc/1's, with hostPID) is how they are told apart.
  const NodeSettings& node = config->node;
  const InterceptSettings& intercept = config->intercept;
  if (auto inode = namespace_inode_of(node.host_netns); !inode) {
    std::cerr << "netprof node: host_netns: " << inode.error()
              << " (node mode reads the node's netns through the host's PID namespace: "
                 "hostPID: true, CAP_SYS_PTRACE, no AppArmor/Landlock rule against it; or set "
                 "host_netns to a readable path of the node's netns)\n";
    return 2;
  }
  set_libbpf_verbose(intercept.verbose);

  std::mutex log_mu;
  auto log = [&log_mu, quiet = config->profile.quiet](const std::string& line) {
    if (quiet) return;
    std::lock_guard lock(log_mu);
    std::cerr << "netprof: " << line << std::endl;
  };

  ProfileOptions profile = config->profile;
  profile.interception_mode = "node";
  profile.workers = resolve_workers(profile);
  NodeAgentOptions agent_options = agent_options_of(*config, profile.workers);
  agent_options.log = log;

  ScopeRegistry registry;
  std::unique_ptr<NodeAgent> agent;
  std::unique_ptr<PodWatcher> watcher;
  bool started = true;
  SessionHooks hooks;
  hooks.scopes = &registry;
  hooks.on_start = [&](SessionControl& session) {
    RelayGroup& relay = session.relays;
    agent = std::make_unique<NodeAgent>(agent_options, relay, registry, session.erase_scope);
    log("node mode: pods under " + *root + ", names from " + node.pod_logs_dir +
        " (kubelet), hostnames and service-account files, inbound ports " +
        std::to_string(intercept.inbound_ports.size()) + ", outbound ports " +
        std::to_string(intercept.outbound_ports.size()) + ", " +
        std::to_string(profile.workers) +
        (profile.workers == 1 ? " relay worker" : " relay workers"));
    watcher = std::make_unique<PodWatcher>(
        *root, std::chrono::milliseconds(static_cast<int64_t>(node.rescan_interval_s * 1000)),
        [&agent, &watcher](const PodScan& scan) {
          if (auto delay = agent->reconcile(scan)) watcher->rescan_within(*delay);
        });
    if (auto status = watcher->start(); !status) {
      log("cannot follow pods: " + status.error());
      started = false;
      relay.request_stop();
    }
  };
  hooks.intercept.pod_of = [&agent](uint32_t scope) -> std::optional<uint32_t> {
    return agent ? agent->pod_of_scope(scope) : std::nullopt;
  };
  hooks.intercept.set = [&agent](uint32_t pod, bool on) {
    return agent ? agent->set_intercepting(pod, on) : std::string("not started");
  };
  hooks.intercept.pods = [&agent] {
    return agent ? agent->pod_labels() : std::vector<std::pair<uint32_t, std::string>>{};
  };
  hooks.on_stop = [&] {
    if (watcher) watcher->stop();  // nothing posts to the relay after this
    if (agent) agent->detach_all();
    log("detached from every pod");
  };
  const int code = run_profile_session(profile, {}, {}, hooks);
  watcher.reset();
  agent.reset();
  return started ? code : 1;
}

}  // namespace

void register_node_command(CLI::App& app) {
  auto flags = std::make_shared<NodeFlags>();
  auto* cmd = app.add_subcommand(
      "node",
      "Profile every pod of this node (the DaemonSet mode, root): pods are found in the "
      "kubepods cgroup tree and followed as they come and go. Settings come from --config "
      "(JSON), NETPROF_<FIELD> variables and flags, flags winning; each is named the same in "
      "all three (--max-routes, max_routes, NETPROF_MAX_ROUTES).");
  cmd->add_option("--config", flags->config_file,
                  "JSON file of settings, fields named like the flags: {\"inbound_ports\": [8080]} "
                  "(env NETPROF_CONFIG)");
  flags->settings = std::make_unique<SettingFlags>(*cmd, kNode);
  cmd->callback([flags] { std::exit(run_node(*flags)); });
}

}  // namespace netprof
