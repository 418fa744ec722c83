#include "cli/proxy_command.h"

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>

#include "cli/session.h"
#include "relay/upstream_dialer.h"

namespace netprof {
namespace {

struct ProxyOptions {
  std::string listen;
  std::string target;
  ProfileOptions profile;
  std::unique_ptr<SettingFlags> flags;  // the shared settings (settings/setting_table.h)
};

// The origin's environment: PORT is where the ambassador listens, TARGET_PORT where the
// service listens. Flags win over the environment.
std::string from_env(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

int run_proxy(const ProxyOptions& o) {
  if (const std::string error = check_profile_options(o.profile); !error.empty()) {
    std::cerr << "netprof: " << error << "\n";
    return 2;
  }
  SocketAddress listen_at, target;
  std::string error;
  const std::string listen_text = o.listen.empty() ? from_env("PORT", "8080") : o.listen;
  const std::string target_text = o.target.empty() ? from_env("TARGET_PORT", "8087") : o.target;
  if (!parse_socket_address(listen_text, "0.0.0.0", listen_at, error)) {
    std::cerr << "netprof proxy: bad listen address " << error
              << " (set --listen ADDR:PORT or PORT)\n";
    return 2;
  }
  if (!parse_socket_address(target_text, "127.0.0.1", target, error)) {
    std::cerr << "netprof proxy: bad target address " << error
              << " (set --target ADDR:PORT or TARGET_PORT)\n";
    return 2;
  }
  ProfileOptions profile = o.profile;
  profile.workers = resolve_workers(profile);
  std::vector<ListenerSpec> listeners;
  SocketAddress bound;  // the real port: with :0 the kernel picked it
  if (const int err = listen_per_worker(listen_at, profile.workers,
                                        std::make_shared<FixedTargetDialer>(target), listeners,
                                        bound);
      err != 0) {
    std::cerr << "netprof proxy: cannot listen on " << listen_at.to_string() << ": "
              << std::strerror(err) << " (pick another --listen port)\n";
    return 1;
  }
  if (!o.profile.quiet) {
    std::cerr << "netprof: relaying " << bound.to_string() << " -> " << target.to_string()
              << " (" << profile.workers << (profile.workers == 1 ? " worker" : " workers")
              << ")" << std::endl;
  }
  return run_profile_session(profile, std::move(listeners));
}

}  // namespace

void register_proxy_command(CLI::App& app) {
  auto options = std::make_shared<ProxyOptions>();
  auto* cmd = app.add_subcommand(
      "proxy", "Relay a TCP port to a target port and profile its HTTP traffic (no privileges)");
  cmd->add_option("-l,--listen", options->listen,
                  "ADDR:PORT to listen on (default: 0.0.0.0:$PORT, PORT defaults to 8080)");
  cmd->add_option("-t,--target", options->target,
                  "ADDR:PORT of the service (default: 127.0.0.1:$TARGET_PORT, "
                  "TARGET_PORT defaults to 8087)");
  options->flags = std::make_unique<SettingFlags>(*cmd, kProxy);
  cmd->callback([options] {
    Settings settings;
    if (!options->flags->apply_or_report(settings)) std::exit(2);
    options->profile = settings.profile;
    std::exit(run_proxy(*options));
  });
}

}  // namespace netprof
