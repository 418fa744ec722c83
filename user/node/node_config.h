// `netprof node` configuration from three sources, later ones winning: a JSON file, NETPROF_*
// environment variables, command-line flags. One name per setting everywhere: the JSON field
// `inbound_ports` is the flag --inbound-ports and the variable NETPROF_INBOUND_PORTS. Every
// value is checked at start; an error names the field and the source it came from.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "intercept/expected.h"

namespace netprof {

struct NodeConfig {
  std::string cgroup_root;                     // "" = the cgroup2 mount
  std::string host_netns = "/proc/1/ns/net";   // the node's netns: hostNetwork pods are skipped
  std::string pod_logs_dir = "/var/log/pods";  // the kubelet's <namespace>_<name>_<uid> dirs
  std::vector<uint16_t> inbound_ports;         // intercepted connections into each pod
  std::vector<uint16_t> outbound_ports;        // ... and from each pod to these remote ports
  bool skmsg = true;
  bool ipv4 = true;
  bool ipv6 = true;
  size_t max_pods = 256;          // pods attached at once; more are logged and skipped
  // Sizes of the node's shared BPF maps (kernel memory: see deploy/README.md).
  size_t bpf_pending_entries = 65536;  // connection handshakes in flight, node-wide
  size_t bpf_local_peers = 65536;      // sockets on the sk_msg fast path, node-wide
  double rescan_interval_s = 10;  // full rescan besides inotify
  double expire_after_s = 300;    // stats of a pod that is gone live this long
  // Profiling (same meaning as the proxy/attach flags).
  std::vector<std::string> routes;
  bool collapse_ids = true;
  bool redact = true;
  size_t route_segment_cap = 100;
  bool keep_query = false;
  size_t max_routes = 10000;
  std::vector<std::string> asset_extensions;
  double report_interval_s = 5;
  std::string report_file;
  size_t max_connections = 100000;
  size_t buffer_kib = 64;
  double drain_timeout_s = 5;
  double connect_timeout_s = 10;
  // /healthz, /metrics, /stats: HOST:PORT, "off", or "" = 127.0.0.1:9464 when free.
  std::string admin_address;
  // /metrics and /healthz only (what the cluster may reach): HOST:PORT or "" = none.
  std::string metrics_address;
  std::string admin_token_file;                // bearer token for the rest of the admin API
  std::vector<std::string> admin_allowed_hosts;  // Host names besides localhost and IPs
  bool quiet = false;
};

enum class FieldKind { kString, kBool, kCount, kSeconds, kPorts, kStrings };

struct ConfigField {
  const char* name;  // JSON field; flag = "--" + name with '-' for '_'; env = NETPROF_ + NAME
  FieldKind kind;
  const char* help;
};
const std::vector<ConfigField>& node_config_fields();
std::string field_flag(const ConfigField& field);  // "--inbound-ports"
std::string field_env(const ConfigField& field);   // "NETPROF_INBOUND_PORTS"

// Applies a JSON object onto `config`. `source` starts each error ("config.json").
Status apply_json(const nlohmann::json& object, const std::string& source, NodeConfig& config);
// Applies one textual value (from a flag or an environment variable): "80,8080", "true", "2.5".
Status apply_text(const ConfigField& field, const std::string& text, const std::string& source,
                  NodeConfig& config);
// Cross-field checks once every source is applied.
Status validate(const NodeConfig& config);

// The file --config names: `path` itself, or, when it is a directory (a ConfigMap mounted as
// a volume), the one regular file in it that is not hidden. More or no files, or anything
// that is neither a file nor a directory, is an error saying so.
Expected<std::string> resolve_config_file(const std::string& path);

// Reads the file, environment and flag values in that order. `flags` maps field names to the
// values given on the command line; `env` is usually the process environment.
Expected<NodeConfig> load_node_config(const std::string& config_file,
                                      const std::map<std::string, std::string>& env,
                                      const std::map<std::string, std::string>& flags);

}  // namespace netprof
