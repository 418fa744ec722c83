// The admin API, served in the relay's process on its own threads (default 127.0.0.1:9464,
// Prometheus' customary exporter port range):
//   /          dashboard page (embedded in the binary; no network fetches)
//   /stats     the JSON report (same document as the periodic report)
//   /metrics   Prometheus text format 0.0.4 (OTel HTTP semconv names + netprof_* self metrics)
//   /healthz   "ok"
//   /tap       exchanges as JSON lines, streamed; ?route= ?method= ?status= ?rate= ?limit= ?path=1
//   /api/series  the duration histograms behind /metrics, as JSON (for the dashboard)
//   /debug/stall  tests only, and only with NETPROF_TEST_HOOKS=1 in the environment: POST
//                stalls the relay's loop (cli/overload_watch.h); 404 otherwise
// Handlers read immutable snapshots from the StatsHub, never the relay's state. /stats,
// /metrics and /api/series are rendered at most once per hub interval and the same bytes are
// sent to every reader (netprof_admin_renders_total counts the renders).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin/http_server.h"
#include "export/prometheus_text.h"

namespace netprof {

class StatsHub;
struct StatsSnapshot;
class TapHub;
class ScopeRegistry;
struct PushStats;
class PrometheusWriter;

struct AdminSources {
  StatsHub* stats = nullptr;  // required
  bool http_metrics = true;   // the http_server_* families (off when they are not recorded)
  TapHub* tap = nullptr;
  // Node mode: who each scope is; adds pod labels to /metrics and the pods grouping to /stats.
  const ScopeRegistry* scopes = nullptr;
  // Push targets' counters, if any pushers run (may be empty).
  std::function<std::vector<PushStats>()> push_stats;
  // Interception: "proxy" (no BPF), or what the BPF attach reports. 1 = traffic is steered.
  std::string mode = "proxy";
  std::function<bool()> interception_active;
  // Per pod (attach, node): its label and whether its interception is active (the overload
  // guard may have detached it); more netprof_interception_active samples, with `pod`.
  std::function<std::vector<std::pair<std::string, bool>>()> interception_pods;
  // The relay's own figures and the overload guard (cli/overload_watch.h): the "relay" object
  // of /stats, their /metrics series, and a version that changes with them (re-renders).
  std::function<nlohmann::json()> relay_status;
  std::function<void(PrometheusWriter&)> relay_metrics;
  std::function<uint64_t()> relay_version;
  // Tests only, set when NETPROF_TEST_HOOKS=1: POST /debug/stall (cli/overload_watch.h).
  std::function<HttpResponse(const HttpRequest&)> debug_stall;
};

// Who may read what on one listener.
struct AdminAccess {
  // false: only /healthz and /metrics (the listener a cluster may reach); the dashboard,
  // /stats, /tap and /api/* answer 404 there.
  bool full_api = true;
  // Non-empty: every path but /healthz and /metrics needs "Authorization: Bearer <token>".
  std::string token;
  // Host names accepted besides localhost and IP literals (DNS rebinding guard).
  std::vector<std::string> allowed_hosts;
};

class AdminServer {
 public:
  static std::unique_ptr<AdminServer> start(const SocketAddress& address, AdminSources sources,
                                            std::string& error);
  static std::unique_ptr<AdminServer> start(const SocketAddress& address, AdminSources sources,
                                            AdminAccess access, std::string& error);
  ~AdminServer();
  const SocketAddress& address() const { return server_->address(); }
  void stop();

  // The /metrics body for a snapshot (also used by tests): Prometheus text, or OpenMetrics
  // with exemplars on the duration buckets (the caller adds "# EOF" with PrometheusWriter::finish).
  static std::string render_metrics(const AdminSources& sources, const StatsSnapshot& snapshot,
                                    double uptime_s,
                                    ExpositionFormat format = ExpositionFormat::kText);

 private:
  AdminServer() = default;
  HttpResponse handle(const HttpRequest& request);  // access checks, then serve()
  HttpResponse serve(const HttpRequest& request);
  HttpResponse tap(const HttpRequest& request);
  HttpResponse slow(const HttpRequest& request);  // /slow: the flight records, filtered

  AdminSources sources_;
  AdminAccess access_;
  std::chrono::steady_clock::time_point started_;
  // The server answers from its own threads as soon as HttpServer::start() has bound, before
  // start() has stored it here: a request handled then (a scrape right at startup) must not
  // read server_ while it is being set. server_mu_ is held while it is set and when a handler
  // reads it.
  mutable std::mutex server_mu_;
  std::unique_ptr<HttpServer> server_;
  HttpServerStats server_stats() const;
};

// The dashboard page (admin/dashboard.html, embedded at build time).
extern const char* const kDashboardHtml;

}  // namespace netprof
