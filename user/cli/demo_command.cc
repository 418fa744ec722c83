#include "cli/demo_command.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>

#include <unistd.h>

#include "cli/flag_checks.h"
#include "cli/session.h"
#include "cli/top_command.h"
#include "demo/demo_backend.h"
#include "demo/demo_traffic.h"
#include "pipeline/stats_hub.h"
#include "report/json_report.h"

namespace netprof {
namespace {

struct DemoOptions {
  std::string listen = "127.0.0.1:0";
  std::string backend = "127.0.0.1:0";
  double duration_s = 12;
  int clients = 4;
  int rps = 200;
  bool serve_only = false;
  ProfileOptions profile;
  std::unique_ptr<SettingFlags> flags;  // the shared settings (settings/setting_table.h)
};

int run_demo(const DemoOptions& o) {
  if (const std::string check = check_profile_options(o.profile); !check.empty()) {
    std::cerr << "netprof demo: " << check << "\n";
    return 2;
  }
  SocketAddress listen_at, backend_at;
  std::string error;
  if (!parse_socket_address(o.listen, "127.0.0.1", listen_at, error) ||
      !parse_socket_address(o.backend, "127.0.0.1", backend_at, error)) {
    std::cerr << "netprof demo: " << error << "\n";
    return 2;
  }
  DemoBackend backend(backend_at);
  if (o.serve_only) {
    std::cerr << "netprof demo: backend serving on " << backend.address().to_string()
              << " (Ctrl-C to stop)" << std::endl;
    pause();
    return 0;
  }
  ProfileOptions profile = o.profile;
  profile.workers = resolve_workers(profile);
  std::vector<ListenerSpec> listeners;
  SocketAddress relay_at;
  if (const int err =
          listen_per_worker(listen_at, profile.workers,
                            std::make_shared<FixedTargetDialer>(backend.address()), listeners,
                            relay_at);
      err != 0) {
    std::cerr << "netprof demo: cannot listen on " << listen_at.to_string() << ": "
              << std::strerror(err) << "\n";
    return 1;
  }
  std::cerr << "netprof demo: backend " << backend.address().to_string() << ", netprof relay "
            << relay_at.to_string() << ", " << o.clients << " clients at ~" << o.rps
            << " req/s for " << o.duration_s << " s; per-URL reports every "
            << o.profile.report_interval_s << " s on stdout" << std::endl;


  std::unique_ptr<DemoTraffic> traffic;
  const auto start = std::chrono::steady_clock::now();
  auto stop_when = [&] {
    // The first poll happens with the relay running: start the clients then.
    if (!traffic) traffic = std::make_unique<DemoTraffic>(relay_at, o.clients, o.rps);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    const bool over = o.duration_s > 0 && elapsed.count() >= o.duration_s;
    if (over) traffic->stop();  // clients finish their exchange before the relay drains
    return over;
  };
  const StatsHub* stats = nullptr;
  SessionHooks hooks;
  hooks.on_start = [&](SessionControl& session) { stats = &session.stats; };
  // The JSON reports are the contract for tools; a person at the terminal who got JSON (piped
  // stdout, --format json) gets the table on stderr at the end too.
  const bool table_on_stdout = profile.report_format == "table" ||
                               (profile.report_format == "auto" && profile.report_file.empty() &&
                                isatty(STDOUT_FILENO) == 1);
  hooks.on_stop = [&] {
    if (stats == nullptr || table_on_stdout || isatty(STDERR_FILENO) != 1) return;
    const std::string text = ReportTable("netprof demo").text(
        build_report(stats->snapshot()->routes, 0, 0), false);
    std::fprintf(stderr, "\n%s", text.c_str());
  };
  const int rc = run_profile_session(profile, std::move(listeners), stop_when, hooks);
  if (traffic) {
    traffic->stop();
    std::cerr << "netprof demo: " << traffic->requests_sent() << " requests sent" << std::endl;
  }
  return rc;
}

}  // namespace

void register_demo_command(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand(
      "demo", "Profile a built-in demo service under generated traffic (no setup needed)");
  cmd->add_option("--duration", o->duration_s, "Seconds to run (0 = until Ctrl-C)")
      ->check(finite_in(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--clients", o->clients, "Concurrent keep-alive clients")
      ->check(whole_in(1, 256))
      ->capture_default_str();
  cmd->add_option("--rps", o->rps, "Approximate requests per second (0 = as fast as possible)")
      ->check(whole_in(0, 1'000'000))
      ->capture_default_str();
  cmd->add_option("-l,--listen", o->listen, "Where the relay listens")->capture_default_str();
  cmd->add_option("--backend", o->backend, "Where the demo backend listens")->capture_default_str();
  cmd->add_flag("--serve-only", o->serve_only,
                "Only run the demo backend (a test server for your own experiments)");
  o->flags = std::make_unique<SettingFlags>(*cmd, kDemo);
  cmd->callback([o] {
    Settings settings;
    if (!o->flags->apply_or_report(settings)) std::exit(2);
    o->profile = settings.profile;
    std::exit(run_demo(*o));
  });
}

}  // namespace netprof
