// `netprof node` configuration from three sources, later ones winning: a JSON file, NETPROF_*
// environment variables, command-line flags. One name per setting everywhere (from the one
// table, settings/setting_table.h): the JSON field `inbound_ports` is the flag
// --inbound-ports and the variable NETPROF_INBOUND_PORTS. Every value is checked at start; an
// error names the field and the source it came from.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/expected.h"
#include "settings/setting_table.h"

namespace netprof {

// Every setting node mode has (settings/setting_table.h).
using NodeConfig = Settings;

// Cross-field checks once every source is applied.
Status validate(const NodeConfig& config);

// The file --config names: `path` itself, or, when it is a directory (a ConfigMap mounted as
// a volume), the one regular file in it that is not hidden. More or no files, or anything
// that is neither a file nor a directory, is an error saying so.
Expected<std::string> resolve_config_file(const std::string& path);

// Reads the file, the environment and the flags, in that order. `env` is usually the process
// environment; `flags` applies the command line (SettingFlags::apply). Deprecated spellings
// add a line to `notes`.
using ApplyFlags = std::function<Status(Settings&, std::vector<std::string>& notes)>;
Expected<NodeConfig> load_node_config(const std::string& config_file,
                                      const std::map<std::string, std::string>& env,
                                      const ApplyFlags& flags, std::vector<std::string>& notes);
// For tests: flags as (setting name -> text), applied like the command line would.
Expected<NodeConfig> load_node_config(const std::string& config_file,
                                      const std::map<std::string, std::string>& env,
                                      const std::map<std::string, std::string>& flags);

}  // namespace netprof
