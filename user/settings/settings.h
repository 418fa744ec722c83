// Every setting of every mode, as values. Which setting exists, its name, kind, range, help and
// modes are declared once, in settings/setting_table.cc; flags, node JSON fields and NETPROF_*
// variables are generated from that table and all fill these structs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace netprof {

// What a profiling session needs: stats, reports, the relay's limits, outputs. Every mode that
// relays (proxy, attach, node, demo) has all of it.
struct ProfileOptions {
  double report_interval_s = 5.0;  // 0 = no periodic report (the final one is still printed)
  std::string report_file;         // empty = stdout
  std::string report_format = "auto";  // auto | json | table (stdout only)
  size_t max_routes = 10000;
  bool keep_query = false;
  std::vector<std::string> asset_extensions;  // empty = the built-in list
  double drain_timeout_s = 5.0;
  double connect_timeout_s = 10.0;
  size_t buffer_kib = 64;
  size_t max_connections = 100000;
  // Relay workers (event loops, one thread each); 0 = the CPUs netprof may use
  // (resolve_workers() in cli/session.h).
  size_t workers = 0;
  bool quiet = false;  // no startup lines on stderr
  // Route templating (routes/route_namer.h).
  std::vector<std::string> route_patterns;  // --route, tried in order
  bool collapse_ids = true;
  bool redact = true;              // secrets in paths -> {redacted} (routes/secrets.h)
  size_t route_segment_cap = 100;  // distinct values per path position before it becomes {*}
  bool trace_ids = true;  // read trace ids from request heads (http/trace_id.h)
  // The flight recorder (stats/flight_recorder.h): records per list and route, 0 = off.
  size_t slow_per_route = 5;
  bool raw_path = false;     // flight records keep the request's path (query: keep_query)
  bool report_slow = false;  // the periodic report shows them too (/stats always does)
  // Outputs (admin/, export/).
  std::string admin;             // ADDR:PORT, "off", or empty = 127.0.0.1:9464 if free
  std::string metrics_address;   // ADDR:PORT serving only /metrics and /healthz; "" = none
  std::string admin_token_file;  // bearer token for the admin API (else $NETPROF_ADMIN_TOKEN)
  std::vector<std::string> admin_allowed_hosts;  // Host names accepted besides IPs/localhost
  std::vector<double> duration_buckets_s, size_buckets_bytes;  // empty = the defaults
  size_t max_series = 2000;
  std::string otlp_endpoint, push_url;
  double push_interval_s = 10;
  std::string service_name = "netprof";
  double stats_interval_s = 1.0;  // snapshot + render interval (pipeline/stats_hub.h)
  // Overload fail-open (relay/overload_guard.h; attach and node only: proxy has nothing to
  // detach). 0 lag = never detach.
  double overload_lag_s = 0.1;
  double overload_for_s = 2.0;
  double overload_cooldown_s = 30.0;
  // Set by the mode, not a setting: the `mode` label of netprof_interception_active.
  std::string interception_mode = "proxy";
};

// eBPF interception (attach, node).
struct InterceptSettings {
  std::vector<uint16_t> inbound_ports;   // intercepted connections into the pod(s)
  std::vector<uint16_t> outbound_ports;  // ... and from the pod(s) to these remote ports
  std::string skmsg = "auto";            // auto, on, off
  bool ipv4 = true;
  bool ipv6 = true;
  bool verbose = false;  // libbpf's log (and, in attach, the BPF counters at exit)
  std::string netns;     // attach: the pod's netns ("" = netprof's own)
  std::string cgroup;    // attach: the pod's cgroup v2 directory
};

// Node mode only.
struct NodeSettings {
  std::string cgroup_root;                     // "" = the cgroup2 mount
  std::string host_netns = "/proc/1/ns/net";   // the node's netns: hostNetwork pods are skipped
  std::string pod_logs_dir = "/var/log/pods";  // the kubelet's <namespace>_<name>_<uid> dirs
  size_t max_pods = 256;                       // pods attached at once; more are skipped
  // Sizes of the node's shared BPF maps (kernel memory: see deploy/README.md).
  size_t bpf_pending_entries = 65536;  // connection handshakes in flight, node-wide
  size_t bpf_local_peers = 65536;      // sockets on the sk_msg fast path, node-wide
  double rescan_interval_s = 10;       // full rescan besides inotify
  double expire_after_s = 300;         // stats of a pod that is gone live this long
};

struct Settings {
  ProfileOptions profile;
  InterceptSettings intercept;
  NodeSettings node;
};

// The BPF port maps' size (bpf/netprof_shared.h NETPROF_MAX_PORTS; intercept/ checks they agree).
constexpr size_t kMaxPortsPerDirection = 64;

}  // namespace netprof
