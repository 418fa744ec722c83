// A profiling session: the stats store, the reporters and the relay, run until SIGINT,
// SIGTERM or SIGQUIT (SIGHUP and SIGUSR1 write a report now). Every mode (proxy, attach, node,
// demo) builds its listeners and calls this.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "relay/relay.h"

namespace netprof {

struct ProfileOptions {
  double report_interval_s = 5.0;  // 0 = no periodic report (the final one is still printed)
  std::string report_file;         // empty = stdout
  size_t max_routes = 10000;
  bool keep_query = false;
  std::vector<std::string> asset_extensions;  // empty = the built-in list
  double drain_timeout_s = 5.0;
  double connect_timeout_s = 10.0;
  size_t buffer_kib = 64;
  size_t max_connections = 100000;
  bool quiet = false;              // no startup lines on stderr
  // Route templating (routes/route_namer.h).
  std::vector<std::string> route_patterns;  // --route, tried in order
  bool collapse_ids = true;
  bool redact = true;              // secrets in paths -> {redacted} (routes/secrets.h)
  size_t route_segment_cap = 100;  // distinct values per path position before it becomes {*}
  // Outputs (admin/, export/).
  std::string admin;               // ADDR:PORT, "off", or empty = 127.0.0.1:9464 if free
  std::string metrics_address;     // ADDR:PORT serving only /metrics and /healthz; "" = none
  std::string admin_token_file;    // bearer token for the admin API (else $NETPROF_ADMIN_TOKEN)
  std::vector<std::string> admin_allowed_hosts;  // Host names accepted besides IPs/localhost
  std::vector<double> duration_buckets_s, size_buckets_bytes;  // empty = the defaults
  size_t max_series = 2000;
  std::string otlp_endpoint, push_url;
  double push_interval_s = 10;
  std::string service_name = "netprof";
  double stats_interval_s = 1.0;   // snapshot + render interval (pipeline/stats_hub.h)
  // Set by the mode, not a flag: the `mode` label of netprof_interception_active.
  std::string interception_mode = "proxy";
};

// Adds the flags every profiling mode shares (stats, report, relay limits).
void add_profile_options(CLI::App& app, ProfileOptions& options);
// Checks what the flags' own checks cannot (bucket order) and what modes fill in from other
// sources; "" when fine, else a message naming the flag. run_profile_session checks too, but
// a mode calls this before it sets anything up.
std::string check_profile_options(const ProfileOptions& options);

class StatsHub;
class ScopeRegistry;

// What a mode whose listeners come and go gets of the running session.
struct SessionControl {
  Relay& relay;  // add/remove listeners with relay.post()
  const StatsHub& stats;  // snapshots of the per-URL stats (read with build_report)
  // Drops every stat and metric series of `scope` (a pod gone for longer than its expiry).
  std::function<void(uint32_t scope)> erase_scope;
};

// For modes whose listeners come and go while the session runs (node mode: one per pod).
struct SessionHooks {
  // Who each scope's traffic belongs to, for the per-pod report and metric labels; may be null.
  const ScopeRegistry* scopes = nullptr;
  // Runs once the relay, the stores and the outputs exist, just before the relay serves.
  std::function<void(SessionControl& session)> on_start;
  // Runs once the relay has stopped, before the final report; nothing may post to the relay
  // after it returns.
  std::function<void()> on_stop;
};

// Runs the relay over `listeners` until SIGINT/SIGTERM/SIGQUIT (or until `stop_when` returns true,
// polled every 100 ms), then drains, prints the final report and returns the exit code.
// `on_started` runs once the relay is about to serve (used to print where it listens).
int run_profile_session(const ProfileOptions& options, std::vector<ListenerSpec> listeners,
                        const std::function<bool()>& stop_when = {},
                        const SessionHooks& hooks = {});

}  // namespace netprof
