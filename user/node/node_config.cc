#include "node/node_config.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace netprof {

using nlohmann::json;

Status validate(const NodeConfig& c) {
  const InterceptSettings& i = c.intercept;
  if (i.inbound_ports.empty() && i.outbound_ports.empty())
    return Error{"inbound_ports: no ports to intercept (set inbound_ports and/or outbound_ports)"};
  if (!i.ipv4 && !i.ipv6) return Error{"ipv4: both ipv4 and ipv6 are off"};
  // Ranges were checked per source; this also covers values set by code.
  if (std::string error = check_settings(c, kNode); !error.empty()) return Error{error};
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
                                      const ApplyFlags& flags, std::vector<std::string>& notes) {
  NodeConfig config;
  if (!config_file.empty()) {
    auto file = resolve_config_file(config_file);
    if (!file) return file.take_error();
    std::ifstream in(*file);
    if (!in) return Error{"config file " + *file + ": cannot be read"};
    json object = json::parse(in, nullptr, false);
    if (object.is_discarded()) return Error{"config file " + *file + ": not valid JSON"};
    if (auto status = apply_json_object(object, "config file " + *file, kNode, config, notes);
        !status)
      return status.take_error();
  }
  if (auto status = apply_environment(env, kNode, config, notes); !status)
    return status.take_error();
  if (flags)
    if (auto status = flags(config, notes); !status) return status.take_error();
  if (auto status = validate(config); !status) return status.take_error();
  return config;
}

Expected<NodeConfig> load_node_config(const std::string& config_file,
                                      const std::map<std::string, std::string>& env,
                                      const std::map<std::string, std::string>& flags) {
  std::vector<std::string> notes;
  return load_node_config(
      config_file, env,
      [&flags](Settings& settings, std::vector<std::string>& flag_notes) -> Status {
        for (const auto& [name, text] : flags) {
          bool deprecated = false;
          const Setting* s = find_setting(name, &deprecated);
          if (s == nullptr) return Error{"unknown setting '" + name + "'"};
          if (deprecated) flag_notes.push_back(flag_name(name) + " is deprecated");
          if (auto status = apply_text(*s, text, "flag " + flag_name(name), settings); !status)
            return status;
        }
        return ok_status();
      },
      notes);
}

}  // namespace netprof
