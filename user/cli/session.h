// A profiling session: the stats store, the reporters and the relay, run until SIGINT,
// SIGTERM or SIGQUIT (SIGHUP and SIGUSR1 write a report now). Every mode (proxy, attach, node,
// demo) builds its listeners and calls this.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "relay/relay.h"
#include "settings/setting_table.h"

namespace netprof {

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
int run_profile_session(const ProfileOptions& options, std::vector<ListenerSpec> listeners,
                        const std::function<bool()>& stop_when = {},
                        const SessionHooks& hooks = {});

}  // namespace netprof
