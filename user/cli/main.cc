// netprof: which URLs of this service are slow, failing or hot?
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
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

#ifndef NETPROF_HAVE_BPF
namespace {

// A build without eBPF (-DNETPROF_BUILD_BPF=OFF) has no attach, check or node: say so for
// them, with what this build can do, rather than CLI11's "unexpected argument".
bool is_bpf_mode(const char* arg) {
  for (const char* mode : {"attach", "check", "node"})
    if (std::strcmp(arg, mode) == 0) return true;
  return false;
}

}  // namespace
#endif

int main(int argc, char** argv) {
#ifndef NETPROF_HAVE_BPF
  if (argc > 1 && is_bpf_mode(argv[1])) {
    std::fprintf(stderr,
                 "netprof %s: this build has no eBPF support (built with "
                 "-DNETPROF_BUILD_BPF=OFF); it has proxy, demo, top and tap. Build with "
                 "-DNETPROF_BUILD_BPF=ON (clang, bpftool, libbpf) for attach, check and node.\n",
                 argv[1]);
    return 1;  // like `check` where interception cannot work
  }
#endif
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
#else
  app.footer("This build has no eBPF support (-DNETPROF_BUILD_BPF=OFF): no attach, check or node.");
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
