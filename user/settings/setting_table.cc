#include "settings/setting_table.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <type_traits>

#include "base/socket_address.h"
#include "export/http_metrics.h"  // check_buckets
#include "routes/route_pattern.h"

namespace netprof {
namespace {

using nlohmann::json;
using K = SettingKind;

// The field of Settings a row fills.
#define FIELD(path) [](Settings& s) -> auto& { return s.path; }

// A row: name, kind, modes, the field it fills, help.
template <typename Field>
Setting setting(const char* name, SettingKind kind, unsigned modes, Field field,
                const char* help) {
  using T = std::remove_cvref_t<decltype(field(std::declval<Settings&>()))>;
  Setting s;
  s.name = name;
  s.kind = kind;
  s.modes = modes;
  s.help = help;
  s.set = [field](Settings& all, const json& value) { field(all) = value.get<T>(); };
  s.get = [field](const Settings& all) { return json(field(const_cast<Settings&>(all))); };
  return s;
}

std::string describe(const json& value) {
  std::string text = value.dump();
  return text.size() > 40 ? text.substr(0, 37) + "..." : text;
}

std::string range_text(double min, double max) {
  std::ostringstream out;
  out << "[" << min << ", " << max << "]";
  return out.str();
}

std::string check_address(const json& value, const char* default_host, bool off_allowed) {
  const std::string text = value.get<std::string>();
  if (text.empty() || (off_allowed && text == "off")) return {};
  SocketAddress address;
  std::string error;
  if (!parse_socket_address(text, default_host, address, error)) return error;  // names the text
  return {};
}

// Histogram bounds: strictly increasing (each item's range is checked before).
std::string check_bucket_list(const json& value) {
  if (value.empty()) return {};
  return check_buckets(value.get<std::vector<double>>());
}

std::string check_routes(const json& value) {
  for (size_t i = 0; i < value.size(); ++i) {
    std::string error;
    const std::string text = value[i].get<std::string>();
    if (!RoutePattern::parse(text, error))
      return "item " + std::to_string(i) + ": '" + text + "': " + error;
  }
  return {};
}

// Long on purpose: it is the table, one row per setting, read top to bottom like the README's
// flag table; split, a setting would be looked for in several places.
std::vector<Setting> build_table() {
  std::vector<Setting> t;
  // One row per setting: name, kind, modes, the field it fills, help; then its range, old
  // names (deprecated aliases) and what --help shows as its value.
  // clang-format off
  // ---- Every mode that profiles (proxy, attach, node, demo): reports, routes, relay limits.
  t.push_back(setting("report_interval", K::kNumber, kRelayModes, FIELD(profile.report_interval_s),
      "Seconds between JSON reports (0 = only the final report)")
      .range(0.1, 86400).off_at_zero().type("SECONDS").alias("report_interval_s"));
  t.push_back(setting("report_file", K::kText, kRelayModes, FIELD(profile.report_file),
      "Write each report to this file, replaced atomically; devices, FIFOs and /dev/stdout are "
      "written through, never replaced (default: stdout)")
      .type("PATH"));
  t.push_back(setting("format", K::kChoice, kRelayModes, FIELD(profile.report_format),
      "How reports print on stdout: table (the per-route table, redrawn in place on a "
      "terminal), json (one document per line), auto (table when stdout is a terminal and "
      "there is no --report-file, else json)")
      .one_of({"auto", "json", "table"}).type("auto|json|table"));
  t.push_back(setting("max_routes", K::kCount, kRelayModes, FIELD(profile.max_routes),
      "Most (method, route) entries kept (per pod in node mode); later ones are counted in one "
      "overflow entry")
      .range(1, 10'000'000));
  t.push_back(setting("keep_query", K::kBool, kRelayModes, FIELD(profile.keep_query),
      "Keep query strings in routes (off by default: they may carry secrets)"));
  t.push_back(setting("asset_ext", K::kTexts, kRelayModes, FIELD(profile.asset_extensions),
      "Extensions that mark a route as a static asset, comma separated (default: images, fonts,"
      " css, js, maps, media, archives, documents)")
      .type("EXT").alias("asset_extensions"));
  t.push_back(setting("drain_timeout", K::kNumber, kRelayModes, FIELD(profile.drain_timeout_s),
      "Seconds open exchanges may take to finish after SIGINT/SIGTERM/SIGQUIT")
      .range(0, 3600).type("SECONDS").alias("drain_timeout_s"));
  t.push_back(setting("connect_timeout", K::kNumber, kRelayModes, FIELD(profile.connect_timeout_s),
      "Seconds to wait for the upstream (the app)")
      .range(0.1, 600).type("SECONDS").alias("connect_timeout_s"));
  t.push_back(setting("buffer_kib", K::kCount, kRelayModes, FIELD(profile.buffer_kib),
      "KiB buffered per direction of a connection before reading pauses")
      .range(4, 16384));
  t.push_back(setting("max_connections", K::kCount, kRelayModes, FIELD(profile.max_connections),
      "Relayed connections at once; more are accepted and closed (counted as rejected)")
      .range(1, 10'000'000));
  t.push_back(setting("workers", K::kCount, kRelayModes, FIELD(profile.workers),
      "Relay workers, each an event loop on its own thread; new connections are spread over "
      "them (0 = the CPUs netprof may use, from its affinity and cgroup CPU quota, at most 16)")
      .range(1, 16).zero_means("auto"));
  t.push_back(setting("quiet", K::kBool, kRelayModes, FIELD(profile.quiet),
      "No startup messages on stderr")
      .short_name("-q"));
  t.push_back(setting("route", K::kTexts, kRelayModes, FIELD(profile.route_patterns),
      "Route template, repeatable, first match wins: '/users/{id}' ({name} or * is one segment,"
      " a last '{name...}' or ** is the rest of the path)")
      .type("TEMPLATE").keep_commas().extra_check(check_routes).alias("routes"));
  t.push_back(setting("id_collapse", K::kBool, kRelayModes, FIELD(profile.collapse_ids),
      "Collapse ID-like path segments (numbers, UUIDs, hex, tokens) to {id}; --no-id-collapse "
      "keeps them")
      .alias("collapse_ids"));
  t.push_back(setting("redact", K::kBool, kRelayModes, FIELD(profile.redact),
      "Replace what looks like a secret in routes, labels and the tap (JWTs, e-mail addresses, "
      "API keys, random tokens) with {redacted} and drop ;path=parameters; --no-redact keeps "
      "them"));
  t.push_back(setting("trace_ids", K::kBool, kRelayModes, FIELD(profile.trace_ids),
      "Keep the trace id a request carries (traceparent, else X-B3-TraceId, else a short "
      "X-Request-Id of [A-Za-z0-9._:-]) in tap lines, /slow and exemplars; read only, never "
      "added; --no-trace-ids ignores them"));
  t.push_back(setting("slow_per_route", K::kCount, kRelayModes, FIELD(profile.slow_per_route),
      "Flight recorder: the slowest exchanges of the current and previous report window and the "
      "most recent failures kept per route, this many of each, with their timing (/slow, "
      "/stats; 0 = off)")
      .range(0, 100));
  t.push_back(setting("raw_path", K::kBool, kRelayModes, FIELD(profile.raw_path),
      "Flight records keep the request's path (its query only with --keep-query); off: only "
      "the route"));
  t.push_back(setting("report_slow", K::kBool, kRelayModes, FIELD(profile.report_slow),
      "Show the flight records under each route of the periodic report too (/stats always "
      "does)"));
  t.push_back(setting("route_segment_cap", K::kCount, kRelayModes, FIELD(profile.route_segment_cap),
      "Distinct values a path position may have before it collapses to {*} (0 = no cap)")
      .range(0, 1'000'000));
  // ---- Outputs (every profiling mode): admin API, Prometheus, pushes.
  t.push_back(setting("admin", K::kText, kRelayModes, FIELD(profile.admin),
      "ADDR:PORT of the admin API (dashboard, /stats, /metrics, /tap), or 'off' (default: "
      "127.0.0.1:9464, skipped with a warning if that port is taken)")
      .type("ADDR:PORT")
      .extra_check([](const json& v) { return check_address(v, "127.0.0.1", true); })
      .alias("admin_address"));
  t.push_back(setting("metrics_address", K::kText, kRelayModes, FIELD(profile.metrics_address),
      "ADDR:PORT serving only /metrics and /healthz (for a cluster's Prometheus and probes; the"
      " dashboard, /stats and /tap stay on --admin)")
      .type("ADDR:PORT")
      .extra_check([](const json& v) { return check_address(v, "0.0.0.0", false); }));
  t.push_back(setting("admin_token_file", K::kText, kRelayModes, FIELD(profile.admin_token_file),
      "File holding a bearer token the admin API requires for everything but /metrics and "
      "/healthz (or set NETPROF_ADMIN_TOKEN); needed for a non-loopback --admin")
      .type("PATH"));
  t.push_back(setting("admin_allow_host", K::kTexts, kRelayModes,
      FIELD(profile.admin_allowed_hosts),
      "Host header name the admin API accepts besides localhost and IP addresses (repeatable; "
      "others are refused: DNS rebinding)")
      .type("NAME").alias("admin_allowed_hosts"));
  t.push_back(setting("metrics_duration_buckets", K::kNumbers, kRelayModes,
      FIELD(profile.duration_buckets_s),
      "Upper bounds in seconds of http_server_request_duration_seconds, comma separated "
      "(default: OpenTelemetry's 0.005,0.01,0.025,0.05,0.075,0.1,0.25,0.5,0.75,1,2.5,5,7.5,10)")
      .range(1e-9, 1e9).type("SECONDS").extra_check(check_bucket_list));
  t.push_back(setting("metrics_size_buckets", K::kNumbers, kRelayModes,
      FIELD(profile.size_buckets_bytes),
      "Upper bounds in bytes of the body size histograms, comma separated (default: "
      "0,100,1000,1e4,1e5,1e6,1e7,1e8)")
      .range(0, 1e18).type("BYTES").extra_check(check_bucket_list));
  t.push_back(setting("max_series", K::kCount, kRelayModes, FIELD(profile.max_series),
      "Most (method, route, status) series in /metrics and pushes; later ones are counted under"
      " route {overflow}")
      .range(1, 1'000'000));
  t.push_back(setting("otlp_endpoint", K::kText, kRelayModes, FIELD(profile.otlp_endpoint),
      "Push metrics as OTLP/HTTP JSON to this collector URL every --push-interval "
      "(http://host:4318 posts to /v1/metrics)")
      .type("URL"));
  t.push_back(setting("push_url", K::kText, kRelayModes, FIELD(profile.push_url),
      "POST the JSON report to this URL every --push-interval (the origin's central server "
      "push)")
      .type("URL"));
  t.push_back(setting("push_interval", K::kNumber, kRelayModes, FIELD(profile.push_interval_s),
      "Seconds between pushes")
      .range(0.1, 86400).type("SECONDS"));
  t.push_back(setting("stats_interval", K::kNumber, kRelayModes, FIELD(profile.stats_interval_s),
      "Seconds between statistics snapshots: how often the relay hands its counts to the "
      "aggregator, and the most often /stats and /metrics are re-rendered")
      .range(0.05, 60).type("SECONDS"));
  t.push_back(setting("service_name", K::kText, kRelayModes, FIELD(profile.service_name),
      "service.name resource attribute of OTLP pushes")
      .type("NAME"));
  // ---- eBPF interception (attach, node).
  t.push_back(setting("overload_lag", K::kNumber, kInterceptModes, FIELD(profile.overload_lag_s),
      "Fail open under overload: when a relay worker's loop keeps taking this long or longer per "
      "turn for --overload-for, the pod whose traffic kept it busiest is detached (its new "
      "connections go straight to the app, relayed ones carry on) until --overload-cooldown has "
      "passed (0 = never detach; the lag is measured anyway)")
      .range(0.001, 60).off_at_zero().type("SECONDS"));
  t.push_back(setting("overload_for", K::kNumber, kInterceptModes, FIELD(profile.overload_for_s),
      "Seconds a worker's loop must keep lagging past --overload-lag before a pod is detached")
      .range(0.1, 3600).type("SECONDS"));
  t.push_back(setting("overload_cooldown", K::kNumber, kInterceptModes,
      FIELD(profile.overload_cooldown_s),
      "Seconds a pod detached for overload stays detached; doubled (up to 8 times) for a pod "
      "detached again within one cool-down of coming back")
      .range(1, 86400).type("SECONDS"));
  t.push_back(setting("inbound_ports", K::kPorts, kInterceptModes, FIELD(intercept.inbound_ports),
      "Comma-separated ports of the pod(s) whose incoming connections to profile")
      .type("PORT"));
  t.push_back(setting("outbound_ports", K::kPorts, kInterceptModes, FIELD(intercept.outbound_ports),
      "Comma-separated remote ports whose connections from the pod(s) to profile")
      .type("PORT"));
  t.push_back(setting("skmsg", K::kChoice, kInterceptModes, FIELD(intercept.skmsg),
      "The sk_msg fast path between local sockets: auto (on where this kernel's sockmap keeps "
      "FIONREAD and readiness right, see `netprof check`), on, off; --no-skmsg is off")
      .one_of({"auto",  "on",  "off"}).type("auto|on|off").was_bool("auto", "off"));
  t.push_back(setting("ipv4", K::kBool, kInterceptModes, FIELD(intercept.ipv4),
      "Intercept IPv4 (--no-ipv4: IPv6 only)"));
  t.push_back(setting("ipv6", K::kBool, kInterceptModes, FIELD(intercept.ipv6),
      "Intercept IPv6 (--no-ipv6: IPv4 only)"));
  t.push_back(setting("verbose", K::kBool, kInterceptModes, FIELD(intercept.verbose),
      "Print libbpf's log (attach: and the BPF counters at exit)")
      .short_name("-v"));
  t.push_back(setting("netns", K::kText, kAttach, FIELD(intercept.netns),
      "The pod's network namespace: /var/run/netns/NAME or /proc/PID/ns/net (default: netprof's"
      " own)")
      .type("PATH"));
  t.push_back(setting("cgroup", K::kText, kAttach, FIELD(intercept.cgroup),
      "The pod's cgroup v2 directory (absolute, or relative to the cgroup2 mount); needed for "
      "--outbound-ports")
      .type("PATH"));
  // ---- Node mode only.
  t.push_back(setting("cgroup_root", K::kText, kNode, FIELD(node.cgroup_root),
      "cgroup v2 directory to find pods under (default: the cgroup2 mount)")
      .type("PATH"));
  t.push_back(setting("host_netns", K::kText, kNode, FIELD(node.host_netns),
      "The node's network namespace; pods sharing it (hostNetwork) are never intercepted "
      "(default /proc/1/ns/net: needs hostPID)")
      .type("PATH"));
  t.push_back(setting("pod_logs_dir", K::kText, kNode, FIELD(node.pod_logs_dir),
      "The kubelet's pod log directory (<namespace>_<name>_<uid> per pod), the first source of "
      "pod names and namespaces; hostname and service-account files are the fallbacks (default "
      "/var/log/pods)")
      .type("PATH"));
  t.push_back(setting("max_pods", K::kCount, kNode, FIELD(node.max_pods),
      "Most pods attached at once (also sizes the node's pods and listener BPF maps)")
      .range(1, 100000));
  t.push_back(setting("bpf_pending_entries", K::kCount, kNode, FIELD(node.bpf_pending_entries),
      "Connection handshakes in flight the node's BPF maps track (5 LRU maps of this size: most"
      " of netprof's fixed kernel memory)")
      .range(256, 4194304));
  t.push_back(setting("bpf_local_peers", K::kCount, kNode, FIELD(node.bpf_local_peers),
      "Sockets the node's sk_msg fast path can hold (two per local relayed hop)")
      .range(256, 4194304));
  t.push_back(setting("rescan_interval", K::kNumber, kNode, FIELD(node.rescan_interval_s),
      "Seconds between full rescans of the cgroup tree (inotify reacts sooner)")
      .range(0.1, 3600).type("SECONDS").alias("rescan_interval_s"));
  t.push_back(setting("expire_after", K::kNumber, kNode, FIELD(node.expire_after_s),
      "Seconds a gone pod's stats and series stay in the report and /metrics")
      .range(0, 30*86400.0).type("SECONDS").alias("expire_after_s"));
  // clang-format on
  return t;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) items.push_back(item);
  return items;
}

std::string check_number(const Setting& s, const json& value, bool whole) {
  if (whole && !value.is_number_integer() && !value.is_number_unsigned())
    return "expected a whole number, got " + describe(value);
  if (!value.is_number()) return "expected a number, got " + describe(value);
  const double v = value.get<double>();
  if (!std::isfinite(v)) return describe(value) + " is not a finite number";
  if (s.zero_is_off && v == 0) return {};
  if (v < s.min || v > s.max) {
    // 0 turns a periodic thing off; a tiny interval would be a busy loop.
    if (s.zero_is_off)
      return describe(value) + " must be 0 (" + s.zero_meaning + ") or in " +
             range_text(s.min, s.max);
    return describe(value) + " is out of range " + range_text(s.min, s.max);
  }
  return {};
}

std::string check_kind(const Setting& s, json& value, std::string* note) {
  switch (s.kind) {
    case K::kText:
      if (!value.is_string()) return "expected a string, got " + describe(value);
      return {};
    case K::kChoice: {
      if (value.is_boolean() && !s.bool_true.empty()) {
        const std::string choice = value.get<bool>() ? s.bool_true : s.bool_false;
        if (note != nullptr) *note = describe(value) + " is deprecated: use \"" + choice + "\"";
        value = choice;
      }
      if (!value.is_string())
        return "expected one of " + describe(json(s.choices)) + ", got " + describe(value);
      for (const std::string& c : s.choices)
        if (value.get<std::string>() == c) return {};
      return describe(value) + " is not one of " + describe(json(s.choices));
    }
    case K::kBool:
      if (!value.is_boolean()) return "expected true or false, got " + describe(value);
      return {};
    case K::kCount:
      return check_number(s, value, true);
    case K::kNumber:
      return check_number(s, value, false);
    case K::kTexts:
      if (!value.is_array()) return "expected a list of strings, got " + describe(value);
      for (size_t i = 0; i < value.size(); ++i)
        if (!value[i].is_string())
          return "item " + std::to_string(i) + ": expected a string, got " + describe(value[i]);
      return {};
    case K::kNumbers:
      if (!value.is_array()) return "expected a list of numbers, got " + describe(value);
      for (size_t i = 0; i < value.size(); ++i)
        if (std::string e = check_number(s, value[i], false); !e.empty())
          return "item " + std::to_string(i) + ": " + e;
      return {};
    case K::kPorts:
      if (!value.is_array()) return "expected a list of ports, got " + describe(value);
      for (size_t i = 0; i < value.size(); ++i) {
        const json& item = value[i];
        if (!item.is_number_integer() || item.get<int64_t>() < 1 || item.get<int64_t>() > 65535)
          return "item " + std::to_string(i) + ": " + describe(item) +
                 " is not a TCP port (1-65535)";
      }
      if (value.size() > kMaxPortsPerDirection)
        return "at most " + std::to_string(kMaxPortsPerDirection) + " ports per direction";
      return {};
  }
  return "unsupported kind";
}

Expected<json> item_value(const Setting& s, const std::string& text) {
  switch (s.kind) {
    case K::kPorts: {
      char* end = nullptr;
      const long v = std::strtol(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0') return Error{"'" + text + "' is not a TCP port (1-65535)"};
      return json(v);
    }
    case K::kNumbers: {
      json value = json::parse(text, nullptr, false);
      if (value.is_discarded() || !value.is_number())
        return Error{"'" + text + "' is not a finite number"};
      return value;
    }
    default:
      return json(text);
  }
}

bool is_list(SettingKind kind) {
  return kind == K::kTexts || kind == K::kNumbers || kind == K::kPorts;
}

// "flag --x: problem", "environment NETPROF_X: x: problem", "config file F: x: problem".
Error problem(const std::string& source, const std::string& name, const std::string& what) {
  if (source.rfind("flag ", 0) == 0) return Error{source.substr(5) + ": " + what};
  return Error{source + ": " + name + ": " + what};
}

}  // namespace

const std::vector<Setting>& setting_table() {
  static const std::vector<Setting> table = build_table();
  return table;
}

const Setting* find_setting(const std::string& name, bool* deprecated) {
  for (const Setting& s : setting_table()) {
    if (s.name == name) {
      if (deprecated != nullptr) *deprecated = false;
      return &s;
    }
    for (const std::string& old : s.aliases)
      if (old == name) {
        if (deprecated != nullptr) *deprecated = true;
        return &s;
      }
  }
  return nullptr;
}

std::string flag_name(const std::string& name) {
  std::string flag = "--" + name;
  for (char& c : flag)
    if (c == '_') c = '-';
  return flag;
}

std::string env_name(const std::string& name) {
  std::string env = "NETPROF_" + name;
  for (char& c : env) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

std::string check_value(const Setting& s, json& value, std::string* note) {
  if (std::string e = check_kind(s, value, note); !e.empty()) return e;
  return s.check ? s.check(value) : std::string();
}

Expected<json> items_value(const Setting& s, const std::vector<std::string>& items) {
  json list = json::array();
  for (const std::string& item : items) {
    auto v = item_value(s, item);
    if (!v) return v.take_error();
    list.push_back(std::move(*v));
  }
  return list;
}

Expected<json> text_value(const Setting& s, const std::string& text) {
  switch (s.kind) {
    case K::kText:
      return json(text);
    case K::kChoice:
      if (!s.bool_true.empty()) {  // node's old true/false
        if (text == "true" || text == "1" || text == "yes") return json(true);
        if (text == "false" || text == "0" || text == "no") return json(false);
      }
      return json(text);
    case K::kBool:
      if (text == "true" || text == "1" || text == "yes") return json(true);
      if (text == "false" || text == "0" || text == "no") return json(false);
      return Error{"'" + text + "' is not a boolean (true/false)"};
    case K::kCount:
    case K::kNumber: {
      json value = json::parse(text, nullptr, false);
      if (value.is_discarded() || !value.is_number())
        return Error{"'" + text + "' is not a number"};
      return value;
    }
    case K::kTexts:
    case K::kNumbers:
    case K::kPorts:
      return items_value(s, split_commas(text));
  }
  return Error{"unsupported kind"};
}

namespace {
// `name`: the spelling the source used (an old name names itself in errors).
Status apply_value(const Setting& s, json value, const std::string& source, const std::string& name,
                   Settings& settings, std::string* note) {
  std::string value_note;
  if (std::string e = check_value(s, value, &value_note); !e.empty())
    return problem(source, name, e);
  if (!value_note.empty() && note != nullptr) *note = source + ": " + name + ": " + value_note;
  s.set(settings, value);
  return ok_status();
}
}  // namespace

Status apply_text(const Setting& s, const std::string& text, const std::string& source,
                  Settings& settings, std::string* note) {
  auto value = text_value(s, text);
  if (!value) return problem(source, s.name, value.error());
  return apply_value(s, std::move(*value), source, s.name, settings, note);
}

Status apply_json_object(const json& object, const std::string& source, Mode mode,
                         Settings& settings, std::vector<std::string>& notes) {
  if (!object.is_object()) return Error{source + ": expected a JSON object of settings"};
  // Old names first, so that the current name wins when a file has both.
  for (const bool old_names : {true, false}) {
    for (const auto& [name, value] : object.items()) {
      bool deprecated = false;
      const Setting* s = find_setting(name, &deprecated);
      if (s == nullptr || (s->modes & mode) == 0)
        return Error{source + ": unknown field '" + name + "' (see `netprof node --help`)"};
      if (deprecated != old_names) continue;
      if (deprecated)
        notes.push_back(source + ": field " + name + " is deprecated: use " + s->name);
      std::string note;
      if (auto status = apply_value(*s, value, source, name, settings, &note); !status)
        return status;
      if (!note.empty()) notes.push_back(note);
    }
  }
  return ok_status();
}

Status apply_environment(const std::map<std::string, std::string>& env, Mode mode,
                         Settings& settings, std::vector<std::string>& notes) {
  for (const Setting& s : setting_table()) {
    if ((s.modes & mode) == 0) continue;
    std::vector<std::string> names = s.aliases;  // old names first: the current one wins
    names.push_back(s.name);
    for (const std::string& name : names) {
      const auto it = env.find(env_name(name));
      if (it == env.end()) continue;
      const std::string source = "environment " + env_name(name);
      if (name != s.name) notes.push_back(source + " is deprecated: use " + env_name(s.name));
      std::string note;
      if (auto status = apply_text(s, it->second, source, settings, &note); !status) return status;
      if (!note.empty()) notes.push_back(note);
    }
  }
  return ok_status();
}

std::string check_settings(const Settings& settings, Mode mode) {
  for (const Setting& s : setting_table()) {
    if ((s.modes & mode) == 0) continue;
    json value = s.get(settings);
    if (std::string e = check_value(s, value); !e.empty()) return flag_name(s.name) + ": " + e;
  }
  return {};
}

std::string check_profile_options(const ProfileOptions& profile) {
  Settings settings;
  settings.profile = profile;
  for (const Setting& s : setting_table()) {
    if ((s.modes & kRelayModes) != kRelayModes) continue;  // the profile part: every mode
    json value = s.get(settings);
    if (std::string e = check_value(s, value); !e.empty()) return flag_name(s.name) + ": " + e;
  }
  if (profile.report_format == "table" && !profile.report_file.empty())
    return "--format table prints to the terminal and a --report-file always gets JSON: drop "
           "one of them";
  return {};
}

// ---- Command line.

struct SettingFlags::Bound {
  const Setting* setting = nullptr;
  std::string spelling;  // the flag as given: --x, or an old --x-s
  bool deprecated = false;
  bool negated = false;  // --no-x
  CLI::Option* option = nullptr;
  std::vector<std::string> items;  // what CLI11 stored
};

namespace {
std::string default_text(const Setting& s) {
  const json value = s.get(Settings{});
  switch (s.kind) {
    case K::kText:
    case K::kChoice:
      return value.get<std::string>();
    case K::kBool:
      return value.get<bool>() ? "true" : "false";
    case K::kCount:
    case K::kNumber: {
      std::ostringstream out;
      out << value.get<double>();
      return out.str();
    }
    default:
      return {};
  }
}
}  // namespace

SettingFlags::SettingFlags(CLI::App& app, Mode mode) {
  for (const Setting& s : setting_table()) {
    if ((s.modes & mode) == 0) continue;
    std::vector<std::pair<std::string, bool>> spellings = {{s.name, false}};
    for (const std::string& old : s.aliases) spellings.emplace_back(old, true);
    for (const auto& [name, deprecated] : spellings) {
      auto b = std::make_unique<Bound>();
      b->setting = &s;
      b->spelling = flag_name(name);
      b->deprecated = deprecated;
      std::string names = b->spelling;
      if (!deprecated && !s.short_flag.empty()) names = s.short_flag + "," + names;
      std::string help = s.help;
      if (mode == kNode) help += " (config " + s.name + ", env " + env_name(s.name) + ")";
      if (deprecated) help = "deprecated: use " + flag_name(s.name);
      CLI::Option* o = app.add_option(names, b->items, help);
      if (s.kind == K::kBool) {
        o->expected(0, 1)->type_name("[BOOL]");
      } else if (is_list(s.kind)) {
        o->type_name(s.type_name.empty() ? "TEXT" : s.type_name);
        if (s.split_commas) o->delimiter(',');
      } else {
        o->expected(1)->type_name(s.type_name.empty() ? (s.kind == K::kCount    ? "N"
                                                         : s.kind == K::kNumber ? "NUMBER"
                                                                                : "TEXT")
                                                      : s.type_name);
      }
      if (!deprecated) {
        std::string shown = default_text(s);
        if (!shown.empty() && s.kind != K::kBool) o->default_str(shown);
      } else {
        o->group("");  // hidden from --help: one name per setting there
      }
      b->option = o;
      bound_.push_back(std::move(b));
      // --no-x for booleans that default to true and for choices that have "off".
      const bool negatable = (s.kind == K::kBool && s.get(Settings{}).get<bool>()) ||
                             (s.kind == K::kChoice && std::find(s.choices.begin(), s.choices.end(),
                                                                "off") != s.choices.end());
      if (!deprecated && negatable) {
        auto n = std::make_unique<Bound>();
        n->setting = &s;
        n->spelling = "--no-" + flag_name(s.name).substr(2);
        n->negated = true;
        n->option = app.add_flag(n->spelling)
                        ->description("The same as " + flag_name(s.name) +
                                      (s.kind == K::kBool ? "=false" : "=off"));
        bound_.push_back(std::move(n));
      }
    }
  }
}

SettingFlags::~SettingFlags() = default;

Status SettingFlags::apply(Settings& settings, std::vector<std::string>& notes) const {
  // Old spellings first, then the current ones, then --no-x: the clearest word wins.
  for (const int pass : {0, 1, 2}) {
    for (const auto& b : bound_) {
      if (b->option->count() == 0) continue;
      const int this_pass = b->negated ? 2 : b->deprecated ? 0 : 1;
      if (this_pass != pass) continue;
      const Setting& s = *b->setting;
      const std::string source = "flag " + b->spelling;
      if (b->deprecated) notes.push_back(b->spelling + " is deprecated: use " + flag_name(s.name));
      std::string note;
      Status status = ok_status();
      if (b->negated) {
        status = apply_value(s, s.kind == K::kBool ? json(false) : json("off"), source, s.name,
                             settings, &note);
      } else if (is_list(s.kind)) {
        auto value = items_value(s, b->items);
        status = value ? apply_value(s, std::move(*value), source, s.name, settings, &note)
                       : Status(problem(source, s.name, value.error()));
      } else {
        std::string text = b->items.empty() ? std::string() : b->items.back();
        if (s.kind == K::kBool && text.empty()) text = "true";  // --x alone
        status = apply_text(s, text, source, settings, &note);
      }
      if (!status) return status;
      if (!note.empty()) notes.push_back(note);
    }
  }
  return ok_status();
}

bool SettingFlags::apply_or_report(Settings& settings) const {
  std::vector<std::string> notes;
  const Status status = apply(settings, notes);
  for (const std::string& note : notes) std::fprintf(stderr, "netprof: note: %s\n", note.c_str());
  if (!status) {
    std::fprintf(stderr, "netprof: %s\n", status.error().c_str());
    return false;
  }
  return true;
}

}  // namespace netprof
