#include "node/node_config.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "netprof_shared.h"
#include "relay/upstream_dialer.h"
#include "routes/route_pattern.h"

namespace netprof {
namespace {

using nlohmann::json;

std::string describe(const json& value) {
  std::string text = value.dump();
  return text.size() > 40 ? text.substr(0, 37) + "..." : text;
}

struct Range {
  double min, max;
};

// Ranges for numbers: the same bounds the proxy/attach flags enforce.
Range range_of(const std::string& name) {
  if (name == "max_pods") return {1, 100000};
  if (name == "bpf_pending_entries") return {256, 4194304};
  if (name == "bpf_local_peers") return {256, 4194304};
  if (name == "rescan_interval_s") return {0.1, 3600};
  if (name == "expire_after_s") return {0, 30 * 86400.0};
  if (name == "route_segment_cap") return {0, 1'000'000};
  if (name == "max_routes") return {1, 10'000'000};
  if (name == "report_interval_s") return {0, 86400};
  if (name == "max_connections") return {1, 10'000'000};
  if (name == "buffer_kib") return {4, 16384};
  if (name == "drain_timeout_s") return {0, 3600};
  if (name == "connect_timeout_s") return {0.1, 600};
  return {0, 0};
}

Expected<double> number_in_range(const std::string& name, const json& value) {
  if (!value.is_number()) return Error{"expected a number, got " + describe(value)};
  const double v = value.get<double>();
  const Range r = range_of(name);
  if (!std::isfinite(v) || v < r.min || v > r.max) {
    std::ostringstream message;
    message << describe(value) << " is out of range [" << r.min << ", " << r.max << "]";
    return Error{message.str()};
  }
  // 0 turns the periodic report off; a tiny interval would be a busy loop writing reports.
  if (name == "report_interval_s" && v != 0 && v < 0.1)
    return Error{describe(value) + " must be 0 (off) or at least 0.1"};
  return v;
}

Expected<size_t> count(const std::string& name, const json& value) {
  if (!value.is_number_integer() && !value.is_number_unsigned())
    return Error{"expected a whole number, got " + describe(value)};
  auto v = number_in_range(name, value);
  if (!v) return v.take_error();
  return static_cast<size_t>(*v);
}

Expected<std::vector<uint16_t>> ports(const json& value) {
  if (!value.is_array()) return Error{"expected a list of ports, got " + describe(value)};
  std::vector<uint16_t> out;
  for (size_t i = 0; i < value.size(); ++i) {
    const json& item = value[i];
    if (!item.is_number_integer() || item.get<int64_t>() < 1 || item.get<int64_t>() > 65535)
      return Error{"item " + std::to_string(i) + ": " + describe(item) +
                   " is not a TCP port (1-65535)"};
    out.push_back(static_cast<uint16_t>(item.get<int64_t>()));
  }
  return out;
}

Expected<std::vector<std::string>> strings(const json& value) {
  if (!value.is_array()) return Error{"expected a list of strings, got " + describe(value)};
  std::vector<std::string> out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string())
      return Error{"item " + std::to_string(i) + ": expected a string, got " + describe(value[i])};
    out.push_back(value[i].get<std::string>());
  }
  return out;
}

// Sets one field from a JSON value; the error text does not repeat the field's name.
Status set_field(const std::string& name, const json& value, NodeConfig& c) {
  auto set_bool = [&](bool& out) -> Status {
    if (!value.is_boolean()) return Error{"expected true or false, got " + describe(value)};
    out = value.get<bool>();
    return ok_status();
  };
  auto set_string = [&](std::string& out) -> Status {
    if (!value.is_string()) return Error{"expected a string, got " + describe(value)};
    out = value.get<std::string>();
    return ok_status();
  };
  auto set_count = [&](size_t& out) -> Status {
    auto v = count(name, value);
    if (!v) return v.take_error();
    out = *v;
    return ok_status();
  };
  auto set_seconds = [&](double& out) -> Status {
    auto v = number_in_range(name, value);
    if (!v) return v.take_error();
    out = *v;
    return ok_status();
  };
  auto set_ports = [&](std::vector<uint16_t>& out) -> Status {
    auto v = ports(value);
    if (!v) return v.take_error();
    out = std::move(*v);
    return ok_status();
  };
  auto set_strings = [&](std::vector<std::string>& out) -> Status {
    auto v = strings(value);
    if (!v) return v.take_error();
    out = std::move(*v);
    return ok_status();
  };

  if (name == "cgroup_root") return set_string(c.cgroup_root);
  if (name == "host_netns") return set_string(c.host_netns);
  if (name == "pod_logs_dir") return set_string(c.pod_logs_dir);
  if (name == "inbound_ports") return set_ports(c.inbound_ports);
  if (name == "outbound_ports") return set_ports(c.outbound_ports);
  if (name == "skmsg") return set_bool(c.skmsg);
  if (name == "ipv4") return set_bool(c.ipv4);
  if (name == "ipv6") return set_bool(c.ipv6);
  if (name == "max_pods") return set_count(c.max_pods);
  if (name == "bpf_pending_entries") return set_count(c.bpf_pending_entries);
  if (name == "bpf_local_peers") return set_count(c.bpf_local_peers);
  if (name == "rescan_interval_s") return set_seconds(c.rescan_interval_s);
  if (name == "expire_after_s") return set_seconds(c.expire_after_s);
  if (name == "routes") {
    if (auto status = set_strings(c.routes); !status) return status;
    for (size_t i = 0; i < c.routes.size(); ++i) {
      std::string error;
      if (!RoutePattern::parse(c.routes[i], error))
        return Error{"item " + std::to_string(i) + ": '" + c.routes[i] + "': " + error};
    }
    return ok_status();
  }
  if (name == "collapse_ids") return set_bool(c.collapse_ids);
  if (name == "redact") return set_bool(c.redact);
  if (name == "route_segment_cap") return set_count(c.route_segment_cap);
  if (name == "keep_query") return set_bool(c.keep_query);
  if (name == "max_routes") return set_count(c.max_routes);
  if (name == "asset_extensions") return set_strings(c.asset_extensions);
  if (name == "report_interval_s") return set_seconds(c.report_interval_s);
  if (name == "report_file") return set_string(c.report_file);
  if (name == "max_connections") return set_count(c.max_connections);
  if (name == "buffer_kib") return set_count(c.buffer_kib);
  if (name == "drain_timeout_s") return set_seconds(c.drain_timeout_s);
  if (name == "connect_timeout_s") return set_seconds(c.connect_timeout_s);
  if (name == "admin_address") {
    if (auto status = set_string(c.admin_address); !status) return status;
    SocketAddress address;
    std::string error;
    if (!c.admin_address.empty() && c.admin_address != "off" &&
        !parse_socket_address(c.admin_address, "0.0.0.0", address, error))
      return Error{"'" + c.admin_address + "': " + error};
    return ok_status();
  }
  if (name == "metrics_address") {
    if (auto status = set_string(c.metrics_address); !status) return status;
    SocketAddress address;
    std::string error;
    if (!c.metrics_address.empty() &&
        !parse_socket_address(c.metrics_address, "0.0.0.0", address, error))
      return Error{"'" + c.metrics_address + "': " + error};
    return ok_status();
  }
  if (name == "admin_token_file") return set_string(c.admin_token_file);
  if (name == "admin_allowed_hosts") return set_strings(c.admin_allowed_hosts);
  if (name == "quiet") return set_bool(c.quiet);
  return Error{"unknown field"};
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) items.push_back(item);
  return items;
}

// A flag's or variable's text as the JSON value the file would hold.
Expected<json> text_to_json(FieldKind kind, const std::string& text) {
  switch (kind) {
    case FieldKind::kString:
      return json(text);
    case FieldKind::kBool:
      if (text == "true" || text == "1" || text == "yes") return json(true);
      if (text == "false" || text == "0" || text == "no") return json(false);
      return Error{"'" + text + "' is not a boolean (true/false)"};
    case FieldKind::kCount:
    case FieldKind::kSeconds: {
      json value = json::parse(text, nullptr, false);
      if (value.is_discarded() || !value.is_number())
        return Error{"'" + text + "' is not a number"};
      return value;
    }
    case FieldKind::kPorts: {
      json list = json::array();
      for (const std::string& item : split_commas(text)) {
        char* end = nullptr;
        const long v = std::strtol(item.c_str(), &end, 10);
        if (*end != '\0' || end == item.c_str())
          return Error{"'" + item + "' is not a TCP port (1-65535)"};
        list.push_back(v);
      }
      return list;
    }
    case FieldKind::kStrings: {
      json list = json::array();
      for (const std::string& item : split_commas(text)) list.push_back(item);
      return list;
    }
  }
  return Error{"unsupported field kind"};
}

const ConfigField* find_field(const std::string& name) {
  for (const ConfigField& field : node_config_fields())
    if (name == field.name) return &field;
  return nullptr;
}

}  // namespace

const std::vector<ConfigField>& node_config_fields() {
  static const std::vector<ConfigField> fields = {
      {"cgroup_root", FieldKind::kString,
       "cgroup v2 directory to find pods under (default: the cgroup2 mount)"},
      {"host_netns", FieldKind::kString,
       "the node's network namespace; pods sharing it (hostNetwork) are never intercepted "
       "(default /proc/1/ns/net: needs hostPID)"},
      {"pod_logs_dir", FieldKind::kString,
       "the kubelet's pod log directory (<namespace>_<name>_<uid> per pod), the first source "
       "of pod names and namespaces; hostname and service-account files are the fallbacks "
       "(default /var/log/pods)"},
      {"inbound_ports", FieldKind::kPorts, "pod ports whose incoming connections to profile"},
      {"outbound_ports", FieldKind::kPorts,
       "remote ports whose connections from each pod to profile"},
      {"skmsg", FieldKind::kBool, "sk_msg fast path between local sockets"},
      {"ipv4", FieldKind::kBool, "intercept IPv4"},
      {"ipv6", FieldKind::kBool, "intercept IPv6"},
      {"max_pods", FieldKind::kCount,
       "most pods attached at once (also sizes the node's pods and listener BPF maps)"},
      {"bpf_pending_entries", FieldKind::kCount,
       "connection handshakes in flight the node's BPF maps track (5 LRU maps of this size: "
       "most of netprof's fixed kernel memory)"},
      {"bpf_local_peers", FieldKind::kCount,
       "sockets the node's sk_msg fast path can hold (two per local relayed hop)"},
      {"rescan_interval_s", FieldKind::kSeconds,
       "seconds between full rescans of the cgroup tree (inotify reacts sooner)"},
      {"expire_after_s", FieldKind::kSeconds,
       "seconds a gone pod's stats and series stay in the report and /metrics"},
      {"routes", FieldKind::kStrings, "route templates, first match wins: /users/{id}"},
      {"collapse_ids", FieldKind::kBool, "collapse ID-like path segments to {id}"},
      {"redact", FieldKind::kBool,
       "replace what looks like a secret in paths (JWTs, e-mails, API keys, tokens) with "
       "{redacted} and drop ;path=parameters"},
      {"route_segment_cap", FieldKind::kCount,
       "distinct values a path position may have before it becomes {*} (0 = no cap)"},
      {"keep_query", FieldKind::kBool, "keep query strings in routes"},
      {"max_routes", FieldKind::kCount, "most (pod, method, route) entries kept"},
      {"asset_extensions", FieldKind::kStrings, "extensions that mark a static asset"},
      {"report_interval_s", FieldKind::kSeconds, "seconds between JSON reports (0 = final only)"},
      {"report_file", FieldKind::kString, "write reports to this file (default: stdout)"},
      {"max_connections", FieldKind::kCount, "relayed connections at once"},
      {"buffer_kib", FieldKind::kCount, "KiB buffered per direction of a connection"},
      {"drain_timeout_s", FieldKind::kSeconds, "seconds open exchanges may finish at stop"},
      {"connect_timeout_s", FieldKind::kSeconds, "seconds to wait for the app"},
      {"admin_address", FieldKind::kString,
       "HOST:PORT of /healthz, /metrics and /stats, or off (default: 127.0.0.1:9464 if free)"},
      {"metrics_address", FieldKind::kString,
       "HOST:PORT serving only /metrics and /healthz (for the cluster; the rest stays on "
       "admin_address)"},
      {"admin_token_file", FieldKind::kString,
       "file with a bearer token the admin API requires for all but /metrics and /healthz "
       "(or NETPROF_ADMIN_TOKEN); needed for a non-loopback admin_address"},
      {"admin_allowed_hosts", FieldKind::kStrings,
       "Host header names the admin API accepts besides localhost and IP addresses"},
      {"quiet", FieldKind::kBool, "no progress messages on stderr"},
  };
  return fields;
}

std::string field_flag(const ConfigField& field) {
  std::string flag = std::string("--") + field.name;
  for (char& c : flag)
    if (c == '_') c = '-';
  return flag;
}

std::string field_env(const ConfigField& field) {
  std::string env = std::string("NETPROF_") + field.name;
  for (char& c : env) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

Status apply_json(const json& object, const std::string& source, NodeConfig& config) {
  if (!object.is_object()) return Error{source + ": expected a JSON object of settings"};
  for (const auto& [name, value] : object.items()) {
    if (find_field(name) == nullptr)
      return Error{source + ": unknown field '" + name + "' (see `netprof node --help`)"};
    if (auto status = set_field(name, value, config); !status)
      return Error{source + ": " + name + ": " + status.error()};
  }
  return ok_status();
}

Status apply_text(const ConfigField& field, const std::string& text, const std::string& source,
                  NodeConfig& config) {
  auto value = text_to_json(field.kind, text);
  if (!value) return Error{source + ": " + field.name + ": " + value.error()};
  if (auto status = set_field(field.name, *value, config); !status)
    return Error{source + ": " + field.name + ": " + status.error()};
  return ok_status();
}

Status validate(const NodeConfig& c) {
  if (c.inbound_ports.empty() && c.outbound_ports.empty())
    return Error{"inbound_ports: no ports to intercept (set inbound_ports and/or outbound_ports)"};
  if (!c.ipv4 && !c.ipv6) return Error{"ipv4: both ipv4 and ipv6 are off"};
  constexpr size_t kMax = NETPROF_MAX_PORTS;  // the BPF port maps' size
  if (c.inbound_ports.size() > kMax || c.outbound_ports.size() > kMax)
    return Error{std::string(c.inbound_ports.size() > kMax ? "inbound_ports" : "outbound_ports") +
                 ": at most " + std::to_string(kMax) + " ports per direction"};
  return ok_status();
}

Expected<std::string> resolve_config_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);  // follows symlinks (ConfigMap keys are)
  if (ec) return Error{"config file " + path + ": " + ec.message()};
  if (fs::is_regular_file(status)) return path;
  if (!fs::is_directory(status))
    return Error{"config file " + path + ": not a regular file (point --config at a JSON file)"};
  // A ConfigMap mounted as a volume is a folder: its keys are files, next to hidden "..data"
  // bookkeeping. With one key, that file is the configuration.
  std::vector<std::string> files;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (fs::is_regular_file(it->status())) files.push_back(it->path().string());
  }
  if (ec) return Error{"config file " + path + ": " + ec.message()};
  if (files.size() == 1) return files[0];
  std::sort(files.begin(), files.end());
  std::string list;
  for (const std::string& f : files) list += (list.empty() ? "" : ", ") + f;
  return Error{"config file " + path + " is a directory with " +
               (files.empty() ? std::string("no files") : std::to_string(files.size()) + " files (" + list + ")") +
               ": point --config at the JSON file"};
}

Expected<NodeConfig> load_node_config(const std::string& config_file,
                                      const std::map<std::string, std::string>& env,
                                      const std::map<std::string, std::string>& flags) {
  NodeConfig config;
  if (!config_file.empty()) {
    auto file = resolve_config_file(config_file);
    if (!file) return file.take_error();
    std::ifstream in(*file);
    if (!in) return Error{"config file " + *file + ": cannot be read"};
    json object = json::parse(in, nullptr, false);
    if (object.is_discarded()) return Error{"config file " + *file + ": not valid JSON"};
    if (auto status = apply_json(object, "config file " + *file, config); !status)
      return status.take_error();
  }
  for (const ConfigField& field : node_config_fields()) {
    if (auto it = env.find(field_env(field)); it != env.end())
      if (auto status = apply_text(field, it->second, "environment " + field_env(field), config);
          !status)
        return status.take_error();
  }
  for (const auto& [name, text] : flags) {
    const ConfigField* field = find_field(name);
    if (field == nullptr) return Error{"unknown setting '" + name + "'"};
    if (auto status = apply_text(*field, text, "flag " + field_flag(*field), config); !status)
      return status.take_error();
  }
  if (auto status = validate(config); !status) return status.take_error();
  return config;
}

}  // namespace netprof
