// `netprof check`: which kernel features interception needs are here, and what netprof can
// and cannot do on this host. Exit status 1 when no interception can work.
#pragma once

#include <CLI/CLI.hpp>

namespace netprof {

void register_check_command(CLI::App& app);

}  // namespace netprof
