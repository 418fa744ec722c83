#include "cli/session.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <thread>

#include "cli/flag_checks.h"
#include "cli/outputs.h"
#include "report/periodic_reporter.h"
#include "report/report_writer.h"
#include "routes/route_namer.h"
#include "stats/asset_classifier.h"
#include "pipeline/stats_hub.h"
#include "report/json_report.h"

namespace netprof {

namespace {
// Below this a periodic report is a busy loop writing files, not a report.
constexpr double kMinReportInterval = 0.1;
}  // namespace

std::string check_profile_options(const ProfileOptions& o) {
  auto bad = [](double v, double min, double max) { return !std::isfinite(v) || v < min || v > max; };
  if (bad(o.report_interval_s, 0, 86400) ||
      (o.report_interval_s != 0 && o.report_interval_s < kMinReportInterval))
    return "--report-interval: must be 0 (off) or a number of seconds in [0.1, 86400]";
  if (bad(o.drain_timeout_s, 0, 3600)) return "--drain-timeout: must be in [0, 3600] seconds";
  if (bad(o.connect_timeout_s, 0.1, 600)) return "--connect-timeout: must be in [0.1, 600] seconds";
  if (bad(o.push_interval_s, 0.1, 86400)) return "--push-interval: must be in [0.1, 86400] seconds";
  if (o.route_segment_cap > 1'000'000) return "--route-segment-cap: must be in [0, 1000000]";
  if (!o.duration_buckets_s.empty())
    if (auto e = check_bucket_bounds(o.duration_buckets_s, false); !e.empty())
      return "--metrics-duration-buckets: " + e;
  if (!o.size_buckets_bytes.empty())
    if (auto e = check_bucket_bounds(o.size_buckets_bytes, true); !e.empty())
      return "--metrics-size-buckets: " + e;
  return {};
}

void add_profile_options(CLI::App& app, ProfileOptions& o) {
  app.add_option("--report-interval", o.report_interval_s,
                 "Seconds between JSON reports (0 = only the final report)")
      ->check(zero_or_finite_in(kMinReportInterval, 86400.0))
      ->capture_default_str();
  app.add_option("--report-file", o.report_file,
                 "Write each report to this file, replaced atomically; devices, FIFOs and "
                 "/dev/stdout are written through, never replaced (default: stdout)");
  app.add_option("--max-routes", o.max_routes,
                 "Most (method, route) entries kept; later ones are counted in one overflow entry")
      ->check(whole_in(1, 10'000'000))
      ->capture_default_str();
  app.add_flag("--keep-query", o.keep_query,
               "Keep query strings in routes (off by default: they may carry secrets)");
  app.add_option("--asset-ext", o.asset_extensions,
                 "Extensions that mark a route as a static asset, comma separated "
                 "(default: images, fonts, css, js, maps, media, archives, documents)")
      ->delimiter(',');
  app.add_option("--drain-timeout", o.drain_timeout_s,
                 "Seconds open exchanges may take to finish after SIGINT/SIGTERM/SIGQUIT")
      ->check(finite_in(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--connect-timeout", o.connect_timeout_s, "Seconds to wait for the upstream")
      ->check(finite_in(0.1, 600.0))
      ->capture_default_str();
  app.add_option("--buffer-kib", o.buffer_kib,
                 "KiB buffered per direction of a connection before reading pauses")
      ->check(whole_in(4, 16384))
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections,
                 "Relayed connections at once; more are accepted and closed (counted as rejected)")
      ->check(whole_in(1, 10'000'000))
      ->capture_default_str();
  app.add_flag("-q,--quiet", o.quiet, "No startup messages on stderr");
  app.add_option("--route", o.route_patterns,
                 "Route template, repeatable, first match wins: '/users/{id}' ({name} or * is "
                 "one segment, a last '{name...}' or ** is the rest of the path)")
      ->check([](const std::string& text) {
        std::string error;
        return RoutePattern::parse(text, error) ? std::string() : error;
      });
  app.add_flag("!--no-id-collapse", o.collapse_ids,
               "Keep ID-like path segments (numbers, UUIDs, hex, tokens) instead of {id}");
  app.add_flag("!--no-redact", o.redact,
               "Keep what looks like a secret in routes, labels and the tap (JWTs, e-mail "
               "addresses, API keys, random tokens, ;path=parameters); by default they become "
               "{redacted} and path parameters are dropped");
  app.add_option("--route-segment-cap", o.route_segment_cap,
                 "Distinct values a path position may have before it collapses to {*} (0 = no cap)")
      ->check(whole_in(0, 1'000'000))
      ->capture_default_str();
  add_output_options(app, o);
}

namespace {

// What each signal does (README, "Signals"). None of them drops traffic.
bool is_stop_signal(int sig) { return sig == SIGINT || sig == SIGTERM || sig == SIGQUIT; }
bool is_report_signal(int sig) { return sig == SIGHUP || sig == SIGUSR1; }

// Waits for the session's signals (blocked in every thread, so only this one sees them) or for
// `stop_when`. SIGINT, SIGTERM and SIGQUIT ask the relay to stop (drain, final report); a second
// one ends the process at once. SIGHUP and SIGUSR1 write a report now; SIGUSR2 is ignored.
void supervise(Relay& relay, const std::function<bool()>& stop_when,
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

}  // namespace

int run_profile_session(const ProfileOptions& o, std::vector<ListenerSpec> listeners,
                        const std::function<bool()>& stop_when, const SessionHooks& hooks) {
  if (const std::string error = check_profile_options(o); !error.empty()) {
    std::fprintf(stderr, "netprof: %s\n", error.c_str());
    return 2;
  }
  RouteNamerOptions naming;
  naming.keep_query = o.keep_query;
  naming.collapse_ids = o.collapse_ids;
  naming.redact = o.redact;
  naming.max_segment_values = o.route_segment_cap;
  std::string pattern_error;
  for (const auto& text : o.route_patterns) {
    naming.patterns.push_back(*RoutePattern::parse(text, pattern_error));  // checked by the flag
  }
  auto namer = std::make_shared<RouteNamer>(std::move(naming));
  auto assets = o.asset_extensions.empty()
                    ? std::make_shared<AssetClassifier>()
                    : std::make_shared<AssetClassifier>(o.asset_extensions);
  Outputs outputs(o, namer, assets);  // the relay's sink (naming, store, metrics, tap), the hub

  RelayOptions relay_options;
  relay_options.buffer_bytes = o.buffer_kib * 1024;
  relay_options.max_connections = o.max_connections;
  relay_options.drain_timeout_ms = static_cast<int>(o.drain_timeout_s * 1000);
  relay_options.connect_timeout_ms = static_cast<int>(o.connect_timeout_s * 1000);
  relay_options.on_tick = [&outputs](MonoNanos now) { outputs.on_relay_tick(now); };
  Relay relay(relay_options, outputs.sink(), outputs.connections());
  for (auto& l : listeners) relay.add_listener(std::move(l));

  // Block the session's signals before any thread starts so that they all inherit the mask;
  // the supervisor takes them with sigtimedwait. Left to their default, SIGHUP, SIGUSR1,
  // SIGUSR2 and SIGQUIT would end the process at once, cutting every connection.
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
  outputs.set_scopes(hooks.scopes);
  if (!outputs.start()) return 1;  // admin API and pushers (threads: after the mask)

  ReporterOptions reporter_options;
  reporter_options.scopes = hooks.scopes;
  reporter_options.interval =
      std::chrono::milliseconds(static_cast<int64_t>(o.report_interval_s * 1000));
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
      [&stats](int64_t now_ms, double uptime_s) {
        stats.collect_now();
        return build_report(stats.snapshot()->routes, now_ms, uptime_s);
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
  const int loop_error = relay.run();
  done.store(true);
  supervisor.join();
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
