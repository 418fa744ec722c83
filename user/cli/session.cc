#include "cli/session.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <cstdio>
#include <thread>

#include "base/clock.h"
#include "cli/outputs.h"
#include "base/cgroup_v2.h"
#include "cli/top_command.h"
#include "report/periodic_reporter.h"
#include "report/report_writer.h"
#include "routes/route_namer.h"
#include "stats/asset_classifier.h"
#include "pipeline/stats_hub.h"
#include "report/json_report.h"

namespace netprof {

size_t resolve_workers(const ProfileOptions& o) {
  if (o.workers != 0) return std::min(o.workers, kMaxWorkers);
  return std::min(kMaxWorkers, usable_cpu_count());
}

// glibc gives each thread that allocates an arena of its own, up to 8 per core, and keeps
// what an arena once held. Every admin request runs on a new thread and a /stats render
// allocates megabytes: with 16 pollers RSS peaked at 135 MiB for what fits in 84 (bench/run,
// readers cell). One arena per relay worker and two for everything else; a MALLOC_ARENA_MAX
// set by the user wins.
void bound_malloc_arenas(size_t workers) {
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr) return;
  mallopt(M_ARENA_MAX, static_cast<int>(workers + 2));
}

int listen_per_worker(const SocketAddress& address, size_t workers,
                      const std::shared_ptr<UpstreamDialer>& dialer,
                      std::vector<ListenerSpec>& out, SocketAddress& bound) {
  const bool reuse_port = workers > 1;  // a single worker keeps a plain listener
  std::vector<ListenerSpec> mine;  // closed with `mine` if a later one fails
  for (uint32_t worker = 0; worker < workers; ++worker) {
    UniqueFd fd = listen_tcp(worker == 0 ? address : bound, 4096, reuse_port);
    if (!fd.valid()) return errno;
    if (worker == 0) {
      bound.length = sizeof bound.storage;
      getsockname(fd.get(), bound.get(), &bound.length);
    }
    mine.push_back({std::move(fd), 0, dialer, worker});
  }
  for (ListenerSpec& l : mine) out.push_back(std::move(l));
  return 0;
}

namespace {

// What each signal does (README, "Signals"). None of them drops traffic.
bool is_stop_signal(int sig) { return sig == SIGINT || sig == SIGTERM || sig == SIGQUIT; }
bool is_report_signal(int sig) { return sig == SIGHUP || sig == SIGUSR1; }

// Waits for the session's signals (blocked in every thread, so only this one sees them) or for
// `stop_when`. SIGINT, SIGTERM and SIGQUIT ask the relay to stop (drain, final report); a second
// one ends the process at once. SIGHUP and SIGUSR1 write a report now; SIGUSR2 is ignored.
void supervise(RelayGroup& relay, const std::function<bool()>& stop_when,
               const std::function<void()>& report_now, std::atomic<bool>& done,
               const sigset_t& signals) {
  const timespec tick{0, 100'000'000};
  bool stopping = false;
  while (!done.load()) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (is_stop_signal(sig)) {
      if (stopping) _exit(128 + sig);
      stopping = true;
      relay.request_stop();
    } else if (is_report_signal(sig)) {
      report_now();  // the final report still follows at stop
    } else if (sig <= 0 && !stopping && stop_when && stop_when()) {
      stopping = true;
      relay.request_stop();
    }
  }
}

RouteNamerOptions naming_options(const ProfileOptions& o) {
  RouteNamerOptions naming;
  naming.keep_query = o.keep_query;
  naming.collapse_ids = o.collapse_ids;
  naming.redact = o.redact;
  naming.max_segment_values = o.route_segment_cap;
  naming.concurrent = o.workers > 1;
  std::string pattern_error;
  for (const auto& text : o.route_patterns) {
    naming.patterns.push_back(*RoutePattern::parse(text, pattern_error));  // checked by the flag
  }
  return naming;
}

RelayOptions relay_options_of(const ProfileOptions& o) {
  RelayOptions relay_options;
  relay_options.buffer_bytes = o.buffer_kib * 1024;
  // The limit is the node's: each worker holds an equal share (rounded up).
  relay_options.max_connections = (o.max_connections + o.workers - 1) / o.workers;
  relay_options.drain_timeout_ms = static_cast<int>(o.drain_timeout_s * 1000);
  relay_options.connect_timeout_ms = static_cast<int>(o.connect_timeout_s * 1000);
  relay_options.tracker.trace_ids = o.trace_ids;
  return relay_options;
}

OverloadGuardOptions overload_guard_options(const ProfileOptions& o) {
  OverloadGuardOptions guard_options;
  guard_options.lag_threshold = static_cast<MonoNanos>(o.overload_lag_s * 1e9);
  guard_options.sustain = static_cast<MonoNanos>(o.overload_for_s * 1e9);
  guard_options.cooldown = static_cast<MonoNanos>(o.overload_cooldown_s * 1e9);
  return guard_options;
}

ReporterOptions reporter_options_of(const ProfileOptions& o, const ScopeRegistry* scopes) {
  ReporterOptions reporter_options;
  reporter_options.scopes = scopes;
  reporter_options.with_flight = o.report_slow;
  reporter_options.interval =
      std::chrono::milliseconds(static_cast<int64_t>(o.report_interval_s * 1000));
  // People at a terminal get the table; pipes, files and programs get JSON.
  const bool stdout_terminal = isatty(STDOUT_FILENO) == 1;
  if (o.report_format == "table" ||
      (o.report_format == "auto" && o.report_file.empty() && stdout_terminal)) {
    reporter_options.render = [table = std::make_shared<ReportTable>("netprof"), stdout_terminal](
                                  const RouteTableSnapshot& routes, int64_t now_ms,
                                  double uptime_s, const ScopeRegistry*) {
      return table->text(build_report(routes, now_ms, uptime_s), stdout_terminal);
    };
  }
  return reporter_options;
}

// Blocks the session's signals in the calling thread (threads started later inherit the mask);
// the supervisor takes them with sigtimedwait. Left to their default, SIGHUP, SIGUSR1, SIGUSR2
// and SIGQUIT would end the process at once, cutting every connection.
sigset_t block_session_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (const int sig : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2}) {
    sigaddset(&signals, sig);
  }
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A peer gone mid-write is an EPIPE to handle, not a reason to die; so is a report that
  // outgrows RLIMIT_FSIZE (EFBIG instead of SIGXFSZ).
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);
  return signals;
}

}  // namespace

int run_profile_session(const ProfileOptions& options, std::vector<ListenerSpec> listeners,
                        const std::function<bool()>& stop_when, const SessionHooks& hooks) {
  if (const std::string error = check_profile_options(options); !error.empty()) {
    std::fprintf(stderr, "netprof: %s\n", error.c_str());
    return 2;
  }
  ProfileOptions o = options;
  o.workers = resolve_workers(options);
  bound_malloc_arenas(o.workers);  // before the relay and admin threads start
  auto namer = std::make_shared<RouteNamer>(naming_options(o));
  auto assets = o.asset_extensions.empty()
                    ? std::make_shared<AssetClassifier>()
                    : std::make_shared<AssetClassifier>(o.asset_extensions);
  Outputs outputs(o, namer, assets);  // the relay's sink (naming, store, metrics, tap), the hub

  RelayGroup relay(
      o.workers, relay_options_of(o),
      [&outputs](size_t i) -> ExchangeSink& { return outputs.sink(i); },
      [&outputs](size_t i, MonoNanos now) { outputs.on_relay_tick(i, now); },
      [&outputs](size_t i) -> ConnectionCounters& { return outputs.connections(i); });
  for (auto& l : listeners) relay.add_listener(std::move(l));

  OverloadWatch overload(relay, overload_guard_options(o), o.interception_mode,
                         [](const std::string& line) {
    std::fprintf(stderr, "netprof: %s\n", line.c_str());
  });
  // Test hooks exist only when asked for by the environment, never by a flag or config.
  const char* hooks_env = std::getenv("NETPROF_TEST_HOOKS");
  const bool test_hooks = hooks_env != nullptr && std::string(hooks_env) == "1";
  if (test_hooks)
    std::fprintf(stderr, "netprof: NETPROF_TEST_HOOKS=1: test hooks on (POST /debug/stall on "
                         "the admin API); never set this outside tests\n");
  outputs.set_overload_watch(&overload, test_hooks);
  // The admin API reads `overload`: whatever path leaves this function, it stops first.
  struct StopOutputs {
    Outputs& outputs;
    ~StopOutputs() { outputs.stop(); }
  } stop_outputs{outputs};

  // Before any thread starts, so that they all inherit the mask.
  const sigset_t signals = block_session_signals();
  outputs.set_scopes(hooks.scopes);
  if (!outputs.start()) return 1;  // admin API and pushers (threads: after the mask)

  const ReporterOptions reporter_options = reporter_options_of(o, hooks.scopes);
  ReportWriter writer =
      o.report_file.empty() ? ReportWriter::to_stdout() : ReportWriter::to_file(o.report_file);
  if (std::string error = writer.check(); !error.empty()) {
    std::fprintf(stderr, "netprof: --report-file %s\n", error.c_str());
    return 2;  // like every setting refused at start
  }
  StatsHub& stats = outputs.stats();
  // A report collects first, so that it is as fresh as when it is written, not one hub
  // interval older (the relay hands over at its next loop tick; it never waits).
  PeriodicReporter reporter(
      [&stats] {
        stats.collect_now();
        std::shared_ptr<const StatsSnapshot> snap = stats.snapshot();
        return std::shared_ptr<const RouteTableSnapshot>(snap, &snap->routes);
      },
      std::move(writer), reporter_options);
  reporter.start();
  if (hooks.on_start) {
    SessionControl control{relay, stats,
                           [&outputs](uint32_t scope) { outputs.erase_scope(scope); }};
    hooks.on_start(control);
  }

  std::atomic<bool> done{false};
  const std::function<void()> report_now = [&reporter] { reporter.report_now(); };
  std::thread supervisor(supervise, std::ref(relay), std::cref(stop_when), std::cref(report_now),
                         std::ref(done), std::cref(signals));
  // The overload guard on its own thread: switching a pod may wait for node mode's lock (held
  // while pods attach), which must not delay the signals. Stopped before on_stop.
  std::thread guard([&overload, &hooks, &done] {
    pthread_setname_np(pthread_self(), "netprof-guard");
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!done.load()) overload.tick(mono_nanos(), hooks.intercept);
    }
  });
  const int loop_error = relay.run();
  done.store(true);
  supervisor.join();
  guard.join();
  outputs.finish_relay();  // what the relay still held, for the final report
  if (hooks.on_stop) hooks.on_stop();
  const std::string report_error = reporter.stop();  // writes the final report
  outputs.stop();                                    // last pushes
  if (loop_error != 0) {
    std::fprintf(stderr, "netprof: event loop failed: %s\n", std::strerror(loop_error));
    return 1;
  }
  if (!report_error.empty()) {
    // The counts of the whole run are gone: a script or a Job must not take this for success.
    std::fprintf(stderr, "netprof: the final report was not written: %s\n", report_error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace netprof
