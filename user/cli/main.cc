// netprof: which URLs of this service are slow, failing or hot?
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "base/version.h"
#include "cli/demo_command.h"
#include "cli/proxy_command.h"
#include "cli/tap_command.h"
#include "cli/top_command.h"
#ifdef NETPROF_HAVE_BPF
#include "cli/attach_command.h"
#include "cli/check_command.h"
#include "cli/node_command.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"netprof: a node-local HTTP profiler. Relays a service's TCP traffic unchanged "
               "and keeps per-URL stats (counts, statuses, latency, bytes)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("netprof ") + netprof::kVersion);
  netprof::register_proxy_command(app);
  netprof::register_demo_command(app);
#ifdef NETPROF_HAVE_BPF
  netprof::register_attach_command(app);
  netprof::register_check_command(app);
  netprof::register_node_command(app);
#endif
  netprof::register_top_command(app);
  netprof::register_tap_command(app);
  // Every mode runs inside parse() (subcommand callbacks). Bad input must end in a message,
  // never in std::terminate's abort (exit 134): report what escaped, exit non-zero.
  try {
    CLI11_PARSE(app, argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "netprof: unexpected error: %s\n", e.what());
    return 70;  // EX_SOFTWARE
  }
  return 0;
}
