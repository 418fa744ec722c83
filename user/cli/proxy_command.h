#pragma once
#include <CLI/CLI.hpp>

namespace netprof {
// `netprof proxy`: the origin's ambassador, no privileges needed.
void register_proxy_command(CLI::App& app);
}  // namespace netprof
