#include "cli/tap_command.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "cli/flag_checks.h"
#include "export/http_client.h"

namespace netprof {
namespace {

struct TapOptions {
  std::string admin = "127.0.0.1:9464";
  std::string route, method, status;
  double rate = 100;
  uint64_t limit = 0;
  bool raw_path = false;
};

std::string percent_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == '*' ||
        c == ',') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

int run_tap(const TapOptions& o) {
  Url url;
  std::string error;
  if (!Url::parse(o.admin, url, error)) {
    std::cerr << "netprof tap: --admin: " << error << "\n";
    return 2;
  }
  url.path = "/tap?rate=" + std::to_string(o.rate);
  if (!o.route.empty()) url.path += "&route=" + percent_encode(o.route);
  if (!o.method.empty()) url.path += "&method=" + percent_encode(o.method);
  if (!o.status.empty()) url.path += "&status=" + percent_encode(o.status);
  if (o.limit != 0) url.path += "&limit=" + std::to_string(o.limit);
  if (o.raw_path) url.path += "&path=1";

  int status = 0;
  std::string rejected;  // the body of a non-200 answer, for the message
  // A token-protected admin API (--admin-token-file there): the same token from the environment.
  std::vector<std::pair<std::string, std::string>> headers;
  if (const char* token = std::getenv("NETPROF_ADMIN_TOKEN"); token != nullptr && *token != '\0')
    headers.emplace_back("Authorization", std::string("Bearer ") + token);
  error = http_stream(url, 3000, status, [&](std::string_view data) {
    if (status != 200) {
      rejected.append(data);
      return true;
    }
    std::fwrite(data.data(), 1, data.size(), stdout);
    std::fflush(stdout);  // a line as soon as it arrives, also into a pipe
    return !std::ferror(stdout);
  }, {}, headers);
  if (!error.empty()) {
    std::cerr << "netprof tap: cannot read http://" << url.host_header() << "/tap: " << error
              << " (is netprof running with --admin there?)\n";
    return 1;
  }
  if (status != 200) {
    std::cerr << "netprof tap: " << status << " " << rejected;
    return 2;
  }
  return 0;
}

}  // namespace

void register_tap_command(CLI::App& app) {
  auto o = std::make_shared<TapOptions>();
  auto* cmd = app.add_subcommand(
      "tap", "Stream individual requests of a running netprof as JSON lines (reads its admin API)");
  cmd->add_option("-a,--admin", o->admin, "Admin API of the netprof to watch (HOST:PORT or http://HOST:PORT)")
      ->capture_default_str();
  cmd->add_option("-r,--route", o->route, "Only this route (as shown by top); a trailing * matches a prefix");
  cmd->add_option("-m,--method", o->method, "Only this method (GET, POST, ...)");
  cmd->add_option("-s,--status", o->status,
                  "Only these statuses, comma separated: codes (404), classes (5xx) or 'error'");
  cmd->add_option("--rate", o->rate, "Most lines per second; the rest are counted in {\"dropped\":n} lines")
      ->check(finite_in(0.001, 10000.0))
      ->capture_default_str();
  cmd->add_option("-n,--limit", o->limit, "Exit after this many requests")
      ->check(whole_in(0, UINT64_C(1'000'000'000'000)));
  cmd->add_flag("--raw-path", o->raw_path,
                "Include the request path as sent (query strings only if netprof runs with --keep-query)");
  cmd->callback([o] { std::exit(run_tap(*o)); });
}

}  // namespace netprof
