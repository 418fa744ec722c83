// `netprof tap`: individual exchanges of a running netprof as JSON lines (from /tap).
#pragma once

#include <CLI/CLI.hpp>

namespace netprof {

void register_tap_command(CLI::App& app);

}  // namespace netprof
