#include "admin/admin_server.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/version.h"
#include "admin/tap_hub.h"
#include "export/http_metrics.h"
#include "pipeline/stats_hub.h"
#include "export/prometheus_http.h"
#include "export/prometheus_text.h"
#include "export/prometheus_tls.h"
#include "export/pusher.h"
#include "report/flight_json.h"
#include "report/json_report.h"
#include "report/pod_grouping.h"

namespace netprof {
namespace {

constexpr size_t kTapBatch = 256;
constexpr auto kTapPoll = std::chrono::milliseconds(100);
constexpr double kMaxTapRate = 10'000;

// netprof's own metrics, one family after another in /metrics order. Long on purpose: a list of
// families with their help texts, no logic to follow; split, the list would be read in pieces.
void write_self_metrics(PrometheusWriter& w, const AdminSources& s, const StatsSnapshot& snap,
                        double uptime_s) {
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  const RouteTableSnapshot& c = snap.routes;
  w.single("netprof_connections_accepted_total", "counter", "Client connections accepted.",
           d(c.accepted));
  w.single("netprof_connections_active", "gauge", "Relayed connections open now.", d(c.active));
  w.single("netprof_connections_unparsed_total", "counter",
           "Connections relayed but not parsed (not HTTP/1.x, HTTP/2 or a TLS ClientHello).",
           d(c.unparsed));
  w.single("netprof_connections_ambiguous_framing_total", "counter",
           "Unparsed connections whose last message had a length that could be read two ways "
           "(conflicting Content-Lengths, Content-Length with Transfer-Encoding): smuggling "
           "attempts or broken peers.",
           d(c.ambiguous_framing));
  w.single("netprof_connections_upstream_failed_total", "counter",
           "Upstream connects that were refused, timed out or unreachable.",
           d(c.upstream_failed));
  w.single("netprof_connections_rejected_total", "counter",
           "Connections accepted and closed at once (connection or fd limit).", d(c.rejected));
  w.single("netprof_http2_untracked_streams_total", "counter",
           "HTTP/2 streams relayed but not counted (past the streams a connection's tracker "
           "follows at once, or without a usable method).",
           d(c.untracked_streams));
  w.family("netprof_relayed_bytes_total", "counter", "Bytes relayed, by direction.");
  w.sample("netprof_relayed_bytes_total", {{"direction", "client_to_server"}},
           d(c.bytes_client_to_server));
  w.sample("netprof_relayed_bytes_total", {{"direction", "server_to_client"}},
           d(c.bytes_server_to_client));

  w.single("netprof_routes", "gauge",
           "Entries in the per-route store (the JSON report), the overflow entry included.",
           d(c.routes.size()));
  w.single("netprof_route_overflowed_requests_total", "counter",
           "Requests counted in the store's overflow entry because --max-routes was reached.",
           d(c.overflowed_requests));
  const RouteNamerCounters& n = snap.namer;
  w.single("netprof_route_pattern_matches_total", "counter",
           "Requests named by a --route pattern.", d(n.pattern_matches));
  w.family("netprof_route_segments_collapsed_total", "counter",
           "Path segments replaced while naming routes: reason=id ({id}: ID-like), "
           "reason=cardinality ({*}: the position exceeded --route-segment-cap), "
           "reason=redacted ({redacted}: looked like a credential or an address, see --no-redact).");
  w.sample("netprof_route_segments_collapsed_total", {{"reason", "id"}}, d(n.id_segments));
  w.sample("netprof_route_segments_collapsed_total", {{"reason", "cardinality"}},
           d(n.capped_segments));
  w.sample("netprof_route_segments_collapsed_total", {{"reason", "redacted"}},
           d(n.redacted_segments));
  w.single("netprof_route_collapsed_positions", "gauge",
           "Path positions collapsed to {*} because they had too many distinct values.",
           d(n.collapsed_positions));
  if (s.http_metrics) {
    w.single("netprof_metric_series", "gauge",
             "(method, route, status) series in the http_server_* families.",
             d(snap.metrics.series.size()));
  }
  w.single("netprof_stats_snapshots_total", "counter",
           "Statistics snapshots published by the aggregator (what the outputs read).",
           d(snap.generation));
  w.family("netprof_admin_renders_total", "counter",
           "Times an admin output was rendered; concurrent and repeated readers within one "
           "interval share a render.");
  for (const auto& [output, renders] : s.stats->render_counts()) {
    w.sample("netprof_admin_renders_total", {{"output", output}}, d(renders));
  }
  if (s.tap != nullptr) {
    const TapStats t = s.tap->stats();
    w.single("netprof_tap_subscribers", "gauge", "Clients streaming /tap now.", d(t.subscribers));
    w.single("netprof_tap_dropped_total", "counter",
             "Tap lines not delivered (rate limit, or the client fell behind).", d(t.dropped));
  }
  if (s.push_stats) {
    const auto pushes = s.push_stats();
    if (!pushes.empty()) {
      w.family("netprof_push_sent_total", "counter", "Payloads a collector accepted.");
      for (const auto& p : pushes) w.sample("netprof_push_sent_total", {{"target", p.name}}, d(p.sent));
      w.family("netprof_push_failed_attempts_total", "counter", "Push attempts that failed (retried).");
      for (const auto& p : pushes) {
        w.sample("netprof_push_failed_attempts_total", {{"target", p.name}}, d(p.failed_attempts));
      }
      w.family("netprof_push_dropped_total", "counter",
               "Payloads given up (queue full while the collector was down, or rejected).");
      for (const auto& p : pushes) w.sample("netprof_push_dropped_total", {{"target", p.name}}, d(p.dropped));
    }
  }
  w.family("netprof_interception_active", "gauge",
           "1 when traffic is steered to netprof (proxy mode: by configuration; BPF modes: "
           "programs attached).");
  const bool active = s.interception_active ? s.interception_active() : true;
  w.sample("netprof_interception_active", {{"mode", s.mode}}, active ? 1 : 0);
  if (s.interception_pods) {
    for (const auto& [pod, pod_active] : s.interception_pods())
      w.sample("netprof_interception_active", {{"mode", s.mode}, {"pod", pod}},
               pod_active ? 1 : 0);
  }
  if (s.relay_metrics) s.relay_metrics(w);
  w.single("netprof_uptime_seconds", "gauge", "Seconds since the profiling session started.",
           uptime_s);
  w.family("netprof_build_info", "gauge", "netprof version.");
  w.sample("netprof_build_info", {{"version", kVersion}}, 1);
}

nlohmann::json series_json(const HttpMetricsSnapshot& snap, const HttpMetricsOptions& options) {
  nlohmann::json series = nlohmann::json::array();
  for (const HttpSeries& s : snap.series) {
    series.push_back({{"method", s.method},
                      {"route", s.route},
                      {"status", s.status},
                      {"error", s.error_type},
                      {"requests", s.requests},
                      {"count", s.duration_s.count},
                      {"sum_s", s.duration_s.sum},
                      {"buckets", s.duration_s.counts}});
  }
  return {{"bounds_s", options.duration_buckets_s}, {"series", std::move(series)}};
}

}  // namespace

namespace {

// The admin API's own health: is someone flooding it, are dashboards revalidating?
void write_admin_server_metrics(PrometheusWriter& w, const HttpServerStats& s) {
  w.family("netprof_admin_connections_total", "counter",
           "Admin API connections by what became of them: accepted; evicted (dropped while "
           "waiting for a request, to make room); refused (no room even so); timed_out (request "
           "head too slow, or idle); fd_exhausted (closed at the fd limit).");
  for (const auto& [event, n] : {std::pair{"accepted", s.accepted}, {"evicted", s.evicted},
                                 {"refused", s.refused}, {"timed_out", s.timed_out},
                                 {"fd_exhausted", s.fd_exhausted}}) {
    w.sample("netprof_admin_connections_total", {{"event", event}}, static_cast<double>(n));
  }
  w.family("netprof_admin_responses_total", "counter",
           "Admin API answers of note: busy (503, every handler taken), bad_host (403 for the "
           "Host header), not_modified (304 to a client that had the bytes).");
  for (const auto& [kind, n] : {std::pair{"busy", s.busy}, {"bad_host", s.bad_host},
                                {"not_modified", s.not_modified}}) {
    w.sample("netprof_admin_responses_total", {{"kind", kind}}, static_cast<double>(n));
  }
}

}  // namespace

std::string AdminServer::render_metrics(const AdminSources& sources, const StatsSnapshot& snap,
                                        double uptime_s, ExpositionFormat format) {
  std::string out;
  out.reserve(64 * 1024);
  PrometheusWriter writer(out, format);
  if (sources.http_metrics) {
    write_http_metrics(writer, snap.metrics, sources.stats->metrics_options(), sources.scopes);
  }
  write_tls_metrics(writer, snap.routes.tls, sources.scopes);
  write_self_metrics(writer, sources, snap, uptime_s);
  return out;  // the caller appends the admin server's own families, then finish()es
}

std::unique_ptr<AdminServer> AdminServer::start(const SocketAddress& address,
                                                AdminSources sources, std::string& error) {
  return start(address, std::move(sources), AdminAccess{}, error);
}

std::unique_ptr<AdminServer> AdminServer::start(const SocketAddress& address,
                                                AdminSources sources, AdminAccess access,
                                                std::string& error) {
  std::unique_ptr<AdminServer> admin(new AdminServer());
  admin->sources_ = std::move(sources);
  admin->access_ = std::move(access);
  admin->started_ = std::chrono::steady_clock::now();
  AdminServer* self = admin.get();
  HttpServerOptions options;
  options.allowed_hosts = admin->access_.allowed_hosts;
  if (admin->sources_.debug_stall) options.post_paths.push_back("/debug/stall");
  {
    std::lock_guard lock(admin->server_mu_);  // its handlers may already run: see server_mu_
    admin->server_ = HttpServer::start(
        address, [self](const HttpRequest& r) { return self->handle(r); }, std::move(options),
        error);
    if (!admin->server_) return nullptr;
  }
  return admin;
}

HttpServerStats AdminServer::server_stats() const {
  std::lock_guard lock(server_mu_);
  return server_->stats();
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::stop() {
  if (server_) server_->stop();
}

namespace {

// Compares without returning early, so the time taken says nothing about the token.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

HttpResponse AdminServer::handle(const HttpRequest& req) {
  const bool probe_path = req.path == "/healthz" || req.path == "/metrics";
  if (!access_.full_api && !probe_path)
    return HttpResponse::text(404, "only /metrics and /healthz are served on this address\n");
  if (!access_.token.empty() && !probe_path) {
    std::string_view auth = req.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    const bool bearer = auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer;
    if (!bearer || !same_secret(auth.substr(kBearer.size()), access_.token)) {
      HttpResponse r = HttpResponse::text(401, "a bearer token is required (Authorization: Bearer ...)\n");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"netprof\"");
      return r;
    }
  }
  return serve(req);
}

HttpResponse AdminServer::serve(const HttpRequest& req) {
  // Pods come and go without a new stats snapshot: renders that show them depend on this too.
  auto scopes_version = [this] {
    return (sources_.scopes ? sources_.scopes->version() : uint64_t{0}) +
           (sources_.relay_version ? sources_.relay_version() : uint64_t{0});
  };
  const double uptime_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (req.path == "/" || req.path == "/index.html") {
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = kDashboardHtml;
    // The page needs nothing from elsewhere; say so to the browser too.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'");
    return r;
  }
  if (req.path == "/stats") {
    HttpResponse r;
    r.content_type = "application/json";
    const bool pretty = !req.param("pretty").empty();
    auto out = sources_.stats->rendered(
        pretty ? "stats_pretty" : "stats", [this, pretty, uptime_s](const StatsSnapshot& snap) {
          if (!pretty) {
            std::string line = report_json_line(snap.routes, unix_ms(), uptime_s, sources_.scopes,
                                                /*with_flight=*/true);
            // The relay's figures are one more member of the report object.
            if (sources_.relay_status && line.size() > 2 && line.back() == '}') {
              line.pop_back();
              line += ",\"relay\":";
              line += sources_.relay_status().dump(-1, ' ', false,
                                                   nlohmann::json::error_handler_t::replace);
              line += '}';
            }
            return line + '\n';
          }
          nlohmann::json report =
              build_report(snap.routes, unix_ms(), uptime_s, /*with_flight=*/true);
          if (sources_.scopes != nullptr) add_pod_grouping(report, *sources_.scopes);
          if (sources_.relay_status) report["relay"] = sources_.relay_status();
          return report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + '\n';
        },
        scopes_version());
    r.shared_body = std::move(out.bytes);
    r.etag = std::move(out.etag);
    return r;
  }
  if (req.path == "/metrics") {
    // Prometheus asks for OpenMetrics first (it carries the exemplars); anything else gets
    // the text format.
    const bool openmetrics =
        req.header("accept").find("application/openmetrics-text") != std::string_view::npos;
    const ExpositionFormat format =
        openmetrics ? ExpositionFormat::kOpenMetrics : ExpositionFormat::kText;
    HttpResponse r;
    r.content_type = openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                 : "text/plain; version=0.0.4; charset=utf-8";
    auto out = sources_.stats->rendered(
        openmetrics ? "metrics_openmetrics" : "metrics",
        [this, uptime_s, format](const StatsSnapshot& snap) {
          std::string body = render_metrics(sources_, snap, uptime_s, format);
          PrometheusWriter writer(body, format);
          write_admin_server_metrics(writer, server_stats());
          writer.finish();  // OpenMetrics: "# EOF", after every family
          return body;
        },
        scopes_version());
    r.shared_body = std::move(out.bytes);
    r.etag = std::move(out.etag);
    return r;
  }
  if (req.path == "/healthz") return HttpResponse::text(200, "ok\n");
  if (req.path == "/debug/stall" && sources_.debug_stall) return sources_.debug_stall(req);
  if (req.path == "/api/series" && sources_.http_metrics) {
    HttpResponse r;
    r.content_type = "application/json";
    auto out = sources_.stats->rendered("series", [this](const StatsSnapshot& snap) {
      return series_json(snap.metrics, sources_.stats->metrics_options())
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    });
    r.shared_body = std::move(out.bytes);
    r.etag = std::move(out.etag);
    return r;
  }
  if (req.path == "/tap" && sources_.tap != nullptr) return tap(req);
  if (req.path == "/slow") return slow(req);
  return HttpResponse::text(404, "not found; try /, /stats, /metrics, /healthz, /tap, /slow\n");
}

HttpResponse AdminServer::slow(const HttpRequest& req) {
  SlowFilter filter;
  filter.route = std::string(req.param("route"));
  filter.method = std::string(req.param("method"));
  filter.pod = std::string(req.param("pod"));
  filter.id = std::string(req.param("id"));
  if (auto error = SlowFilter::parse_status(req.param("status"), filter.status); !error.empty()) {
    return HttpResponse::text(400, error + "\n");
  }
  if (auto error = filter.parse_numbers(req.param("min_ms"), req.param("limit")); !error.empty()) {
    return HttpResponse::text(400, error + "\n");
  }
  const ScopeRegistry* scopes = sources_.scopes;
  std::function<std::optional<std::string>(uint32_t)> pod_of;
  if (scopes != nullptr) {
    pod_of = [scopes](uint32_t scope) -> std::optional<std::string> {
      auto info = scopes->find(scope);
      if (!info) return std::nullopt;
      return info->pod_name;
    };
  }
  auto render = [filter, pod_of](const StatsSnapshot& snap) {
    return render_slow(snap.routes, filter, pod_of) + "\n";
  };
  HttpResponse r;
  r.content_type = "application/json";
  const bool unfiltered = filter.route.empty() && filter.method.empty() && filter.pod.empty() &&
                          filter.id.empty() && filter.status.empty() && filter.min_ms == 0 &&
                          filter.limit == 0;
  if (unfiltered) {
    // What the dashboard polls: rendered once per interval for every reader.
    auto out = sources_.stats->rendered("slow", render, scopes != nullptr ? scopes->version() : 0);
    r.shared_body = std::move(out.bytes);
    r.etag = std::move(out.etag);
  } else {
    r.body = render(*sources_.stats->snapshot());  // one reader's filter: bounded by the table
  }
  return r;
}

HttpResponse AdminServer::tap(const HttpRequest& req) {
  auto filter = std::make_shared<TapFilter>();
  filter->route = std::string(req.param("route"));
  filter->method = std::string(req.param("method"));
  const std::string_view raw = req.param("path");
  filter->raw_path = raw == "1" || raw == "true";
  if (auto error = TapFilter::parse_status(req.param("status"), filter->status); !error.empty()) {
    return HttpResponse::text(400, error + "\n");
  }
  try {
    filter->max_per_second = std::stod(std::string(req.param("rate", "100")));
    filter->limit = std::stoull(std::string(req.param("limit", "0")));
  } catch (const std::exception&) {
    return HttpResponse::text(400, "rate and limit must be numbers\n");
  }
  if (!(filter->max_per_second > 0) || filter->max_per_second > kMaxTapRate) {
    return HttpResponse::text(400, "rate must be in (0, 10000] lines per second\n");
  }
  HttpResponse r;
  r.content_type = "application/x-ndjson";
  TapHub* hub = sources_.tap;
  r.stream = [hub, filter](StreamWriter& out) {
    auto subscription = hub->subscribe();
    std::vector<TapRecord> batch;
    batch.reserve(kTapBatch);
    // Token bucket: a burst of one second's worth, and at least one line.
    const double burst = std::max(1.0, filter->max_per_second);
    double tokens = burst;
    auto last = std::chrono::steady_clock::now();
    uint64_t sent = 0, dropped = 0;
    while (out.open()) {
      const uint64_t skipped = subscription->read(batch, kTapBatch);
      const auto now = std::chrono::steady_clock::now();
      tokens = std::min(burst, tokens + std::chrono::duration<double>(now - last).count() * filter->max_per_second);
      last = now;
      std::string lines;
      uint64_t lost = skipped;
      for (const TapRecord& rec : batch) {
        if (!filter->matches(rec)) continue;
        if (tokens < 1) {
          ++lost;
          continue;
        }
        tokens -= 1;
        lines += hub->format(rec, filter->raw_path);
        if (filter->limit != 0 && ++sent >= filter->limit) break;
      }
      if (lost != 0) {
        subscription->count_dropped(lost);
        dropped += lost;
        // Say so in-band, so a reader knows the stream is a sample, not everything.
        lines += "{\"dropped\":" + std::to_string(lost) + ",\"dropped_total\":" +
                 std::to_string(dropped) + "}\n";
      }
      if (!lines.empty() && !out.write(lines)) return;
      if (filter->limit != 0 && sent >= filter->limit) return;
      if (batch.size() < kTapBatch) std::this_thread::sleep_for(kTapPoll);
    }
  };
  return r;
}

}  // namespace netprof
