// `netprof top`: a live per-route view of a running netprof, read from its admin API.
#pragma once

#include <CLI/CLI.hpp>

namespace netprof {

void register_top_command(CLI::App& app);

}  // namespace netprof
