#pragma once
#include <CLI/CLI.hpp>

namespace netprof {
// `netprof demo`: a built-in backend and traffic, profiled through the relay.
void register_demo_command(CLI::App& app);
}  // namespace netprof
