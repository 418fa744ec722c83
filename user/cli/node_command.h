// `netprof node`: one netprof per node profiles the pods of that node (the DaemonSet mode).
#pragma once

#include <CLI/CLI.hpp>

namespace netprof {

void register_node_command(CLI::App& app);

}  // namespace netprof
