#include "cli/outputs.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "admin/admin_server.h"
#include "admin/tap_hub.h"
#include "base/clock.h"
#include "export/http_metrics.h"
#include "export/otlp_json.h"
#include "export/pusher.h"
#include "report/json_report.h"
#include "report/pod_grouping.h"
#include "pipeline/exchange_pipeline.h"
#include "pipeline/stats_hub.h"
#include "stats/route_store.h"

namespace netprof {
namespace {

constexpr const char* kDefaultAdmin = "127.0.0.1:9464";
constexpr size_t kTapRing = 1024;

bool is_loopback(const SocketAddress& a) {
  if (a.family() == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(a.get())->sin_addr.s_addr) >> 24) == 127;
  if (a.family() == AF_INET6) {
    const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(a.get())->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

// The token from --admin-token-file, else $NETPROF_ADMIN_TOKEN; never printed. Surrounding
// whitespace (a file's final newline) is not part of it.
bool read_admin_token(const std::string& file, std::string& token) {
  token.clear();
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) {
      std::fprintf(stderr, "netprof: --admin-token-file %s: cannot be read\n", file.c_str());
      return false;
    }
    std::getline(in, token);
  } else if (const char* env = std::getenv("NETPROF_ADMIN_TOKEN"); env != nullptr) {
    token = env;
  } else {
    return true;
  }
  const auto first = token.find_first_not_of(" \t\r\n");
  const auto last = token.find_last_not_of(" \t\r\n");
  token = first == std::string::npos ? std::string() : token.substr(first, last - first + 1);
  if (token.empty()) {
    std::fprintf(stderr, "netprof: the admin token (%s) is empty\n",
                 file.empty() ? "NETPROF_ADMIN_TOKEN" : file.c_str());
    return false;
  }
  return true;
}

}  // namespace

struct Outputs::Impl {
  const ProfileOptions& options;
  std::shared_ptr<RouteNamer> namer;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  const int64_t wall_minus_mono_ms = unix_ms() - mono_ms();
  StatsHub hub;
  TapHub tap;
  std::vector<std::unique_ptr<ExchangePipeline>> pipelines;  // one per relay worker
  std::vector<std::unique_ptr<Pusher>> pushers;
  std::unique_ptr<AdminServer> admin;
  std::unique_ptr<AdminServer> metrics_only;  // --metrics-address
  const ScopeRegistry* scopes = nullptr;
  OverloadWatch* overload = nullptr;
  bool test_hooks = false;

  static HttpMetricsOptions metrics_options(const ProfileOptions& o) {
    HttpMetricsOptions m;
    if (!o.duration_buckets_s.empty()) m.duration_buckets_s = o.duration_buckets_s;
    if (!o.size_buckets_bytes.empty()) m.size_buckets_bytes = o.size_buckets_bytes;
    m.max_series = o.max_series;
    return m;
  }
  // With the admin API off and no OTLP push, nobody reads the series or the tap: skip them.
  static bool wants_metrics(const ProfileOptions& o) {
    return o.admin != "off" || !o.metrics_address.empty() || !o.otlp_endpoint.empty();
  }
  static FlightOptions flight_options(const ProfileOptions& o) {
    FlightOptions f;
    f.per_route = o.slow_per_route;
    f.raw_path = o.raw_path;
    f.keep_query = o.keep_query;
    return f;
  }
  static PipelineOptions pipeline_options(const ProfileOptions& o) {
    PipelineOptions p;
    p.limits.max_routes = o.max_routes;
    p.limits.flight = flight_options(o);
    p.metrics = metrics_options(o);
    p.record_metrics = wants_metrics(o);
    p.max_hold = hub_options(o).interval;
    return p;
  }
  // A report every 0.2 s should not show counts a second old: the hub collects at least as
  // often as reports are written.
  static StatsHubOptions hub_options(const ProfileOptions& o) {
    StatsHubOptions h;
    double seconds = o.stats_interval_s;
    if (o.report_interval_s > 0) seconds = std::min(seconds, o.report_interval_s);
    h.interval = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    // Slowest per report window; without periodic reports, per minute.
    const double window_s = o.report_interval_s > 0 ? o.report_interval_s : 60;
    h.flight_window = std::chrono::milliseconds(static_cast<int64_t>(window_s * 1000));
    return h;
  }

  Impl(const ProfileOptions& o, std::shared_ptr<RouteNamer> n,
       std::shared_ptr<const AssetClassifier> assets)
      : options(o), namer(n),
        hub(hub_options(o), StoreLimits{.max_routes = o.max_routes, .flight = flight_options(o)},
            metrics_options(o), n, assets),
        tap(kTapRing, o.keep_query,
            [this](MonoNanos t) { return t / 1'000'000 + wall_minus_mono_ms; }) {
    for (size_t i = 0; i < std::max<size_t>(1, o.workers); ++i) {
      pipelines.push_back(std::make_unique<ExchangePipeline>(
          pipeline_options(o), n, assets, o.admin != "off" ? &tap : nullptr, hub.connections(pipelines.size())));
      hub.add_worker(pipelines.back().get());
    }
  }


  double uptime_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  bool add_pusher(const std::string& name, const std::string& url_text,
                  std::function<std::string()> build);
  // The steps of Outputs::start(): the OTLP and JSON pushers, then the admin API and the
  // metrics-only server. Each prints why it failed.
  bool add_pushers();
  bool start_admin();
};

Outputs::Outputs(const ProfileOptions& options, std::shared_ptr<RouteNamer> namer,
                 std::shared_ptr<const AssetClassifier> assets)
    : impl_(std::make_unique<Impl>(options, std::move(namer), std::move(assets))) {}

Outputs::~Outputs() { stop(); }

ExchangeSink& Outputs::sink(size_t worker) { return *impl_->pipelines.at(worker); }
ConnectionCounters& Outputs::connections(size_t worker) { return impl_->hub.connections(worker); }
StatsHub& Outputs::stats() { return impl_->hub; }
void Outputs::on_relay_tick(size_t worker, MonoNanos now) {
  impl_->pipelines[worker]->on_tick(now);
}

bool Outputs::Impl::add_pusher(const std::string& name, const std::string& url_text,
                               std::function<std::string()> build) {
  PushOptions p;
  std::string error;
  if (!Url::parse(url_text, p.url, error)) {
    std::fprintf(stderr, "netprof: bad %s URL '%s': %s\n", name.c_str(), url_text.c_str(), error.c_str());
    return false;
  }
  p.name = name;
  p.interval = std::chrono::milliseconds(static_cast<int64_t>(options.push_interval_s * 1000));
  pushers.push_back(std::make_unique<Pusher>(std::move(p), std::move(build)));
  return true;
}

void Outputs::set_scopes(const ScopeRegistry* scopes) { impl_->scopes = scopes; }

void Outputs::set_overload_watch(OverloadWatch* watch, bool test_hooks) {
  impl_->overload = watch;
  impl_->test_hooks = test_hooks;
}

void Outputs::erase_scope(uint32_t scope) { impl_->hub.erase_scope(scope); }

bool Outputs::Impl::add_pushers() {
  Impl& m = *this;
  const ProfileOptions& o = options;
  if (!o.otlp_endpoint.empty()) {
    OtlpResource resource;
    resource.attributes.emplace_back("service.name", o.service_name);
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0) resource.attributes.emplace_back("host.name", host);
    resource.attributes.emplace_back("telemetry.sdk.name", "netprof");
    if (!m.add_pusher("otlp", otlp_metrics_url(o.otlp_endpoint), [&m, resource] {
          return build_otlp_metrics(m.hub.snapshot()->metrics, m.hub.metrics_options(), resource,
                                    unix_nanos());
        })) {
      return false;
    }
  }
  if (!o.push_url.empty()) {
    if (!m.add_pusher("json", o.push_url, [&m] {
          m.hub.collect_now();  // as fresh as the push
          return report_json_line(m.hub.snapshot()->routes, unix_ms(), m.uptime_s(), m.scopes,
                                  m.options.report_slow);
        })) {
      return false;
    }
  }
  return true;
}

bool Outputs::Impl::start_admin() {
  Impl& m = *this;
  const ProfileOptions& o = options;
  if (o.admin == "off" && o.metrics_address.empty()) return true;
  const bool explicit_address = !o.admin.empty();
  SocketAddress address;
  std::string error;
  if (o.admin != "off" &&
      !parse_socket_address(explicit_address ? o.admin : kDefaultAdmin, "127.0.0.1", address, error)) {
    std::fprintf(stderr, "netprof: bad --admin address %s\n", error.c_str());
    return false;
  }
  AdminAccess access;
  access.allowed_hosts = o.admin_allowed_hosts;
  if (!read_admin_token(o.admin_token_file, access.token)) return false;
  if (o.admin != "off" && !is_loopback(address) && access.token.empty()) {
    std::fprintf(stderr,
                 "netprof: --admin %s would open /stats, /tap and the dashboard to the network: "
                 "use --metrics-address %s for /metrics and /healthz only (keep --admin on "
                 "127.0.0.1), or require a token with --admin-token-file or NETPROF_ADMIN_TOKEN\n",
                 o.admin.c_str(), o.admin.c_str());
    return false;
  }
  AdminSources sources;
  sources.stats = &m.hub;
  sources.http_metrics = Impl::wants_metrics(o);
  sources.tap = &m.tap;
  sources.scopes = m.scopes;
  sources.mode = o.interception_mode;
  if (OverloadWatch* watch = m.overload; watch != nullptr) {
    sources.interception_active = [watch] { return watch->any_active(); };
    sources.interception_pods = [watch] { return watch->pod_states(); };
    sources.relay_status = [watch] { return watch->status(); };
    sources.relay_metrics = [watch](PrometheusWriter& w) { watch->write_metrics(w); };
    sources.relay_version = [watch] { return watch->version(); };
    if (m.test_hooks)
      sources.debug_stall = [watch](const HttpRequest& r) { return watch->debug_stall(r); };
  }
  sources.push_stats = [&m] {
    std::vector<PushStats> all;
    for (const auto& p : m.pushers) all.push_back(p->stats());
    return all;
  };
  if (!o.metrics_address.empty()) {
    SocketAddress metrics_at;
    if (!parse_socket_address(o.metrics_address, "0.0.0.0", metrics_at, error)) {
      std::fprintf(stderr, "netprof: bad --metrics-address %s\n", error.c_str());
      return false;
    }
    AdminAccess probes_only = access;
    probes_only.full_api = false;
    probes_only.token.clear();  // Prometheus and the kubelet read these without a token
    m.metrics_only = AdminServer::start(metrics_at, sources, std::move(probes_only), error);
    if (!m.metrics_only) {
      std::fprintf(stderr, "netprof: --metrics-address: %s\n", error.c_str());
      return false;
    }
    if (!o.quiet)
      std::fprintf(stderr, "netprof: metrics on http://%s/ (/metrics, /healthz)\n",
                   m.metrics_only->address().to_string().c_str());
  }
  if (o.admin == "off") {
    // only --metrics-address
  } else if (m.admin = AdminServer::start(address, std::move(sources), std::move(access), error);
             !m.admin) {
    if (explicit_address) {
      std::fprintf(stderr, "netprof: admin API: %s (pick another --admin ADDR:PORT or --admin off)\n",
                   error.c_str());
      return false;
    }
    std::fprintf(stderr, "netprof: admin API not started: %s (set --admin ADDR:PORT)\n", error.c_str());
  } else if (!o.quiet) {
    std::fprintf(stderr, "netprof: admin API on http://%s/ (dashboard, /stats, /metrics, /tap)\n",
                 m.admin->address().to_string().c_str());
  }
  return true;
}

bool Outputs::start() {
  Impl& m = *impl_;
  if (!m.add_pushers() || !m.start_admin()) return false;
  m.hub.start();
  for (auto& p : m.pushers) p->start();
  return true;
}

void Outputs::finish_relay() { impl_->hub.collect_now(/*workers_stopped=*/true); }

void Outputs::stop() {
  impl_->hub.stop();
  for (auto& p : impl_->pushers) p->stop();
  if (impl_->admin) impl_->admin->stop();
  if (impl_->metrics_only) impl_->metrics_only->stop();
}

}  // namespace netprof
