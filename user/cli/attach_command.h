// `netprof attach`: profile a pod in place with eBPF interception (no change to the app).
#pragma once

#include <CLI/CLI.hpp>

namespace netprof {

void register_attach_command(CLI::App& app);

}  // namespace netprof
