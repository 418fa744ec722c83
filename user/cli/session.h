// A profiling session: the stats store, the reporters and the relay, run until SIGINT,
// SIGTERM or SIGQUIT (SIGHUP and SIGUSR1 write a report now). Every mode (proxy, attach, node,
// demo) builds its listeners and calls this.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/overload_watch.h"
#include "relay/relay.h"
#include "relay/relay_group.h"
#include "settings/setting_table.h"

namespace netprof {

// Most relay workers: each pod's interception has one listener per worker and family in a
// BPF map sized for this (NETPROF_MAX_WORKERS; the `workers` setting's range).
constexpr size_t kMaxWorkers = 16;
// options.workers, or when 0 the CPUs netprof may use (affinity and cgroup cpu.max), at most
// kMaxWorkers. Modes that make listeners per worker call this first and store the result.
size_t resolve_workers(const ProfileOptions& options);

// One listener per worker on `address`, in one SO_REUSEPORT group when there are several (the
// kernel spreads new connections over them by 4-tuple hash); appended to `out` with `dialer`.
// With port 0 the kernel picks the port of the first and the others join it; `bound` is where
// they listen. Returns 0, or an errno (nothing left open).
int listen_per_worker(const SocketAddress& address, size_t workers,
                      const std::shared_ptr<UpstreamDialer>& dialer,
                      std::vector<ListenerSpec>& out, SocketAddress& bound);

class StatsHub;
class ScopeRegistry;

// What a mode whose listeners come and go gets of the running session.
struct SessionControl {
  RelayGroup& relays;  // add/remove listeners with post_listeners()/post_remove_listeners()
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
  // What the overload guard may detach (cli/overload_watch.h); empty: nothing (proxy). Its
  // functions run on the session's supervisor thread, from after on_start to before on_stop.
  InterceptionSwitch intercept;
};

// Runs the relay over `listeners` until SIGINT/SIGTERM/SIGQUIT (or until `stop_when` returns true,
// polled every 100 ms), then drains, prints the final report and returns the exit code.
int run_profile_session(const ProfileOptions& options, std::vector<ListenerSpec> listeners,
                        const std::function<bool()>& stop_when = {},
                        const SessionHooks& hooks = {});

}  // namespace netprof
