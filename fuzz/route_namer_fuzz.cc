// libFuzzer target: the route namer (user/routes/) on arbitrary request targets. Byte 0 picks
// the options; the rest is split at '\n' into targets named one after another by one namer
// (so the per-position cardinality state is exercised too). Checks what every consumer of a
// route relies on: valid UTF-8 without controls (Prometheus labels, JSON, the terminal), a
// leading '/' for origin-form targets, no path parameters and nothing secret-shaped left in
// the path when redaction is on.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "routes/route_namer.h"
#include "routes/secrets.h"
#include "routes/utf8.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view route) {
  std::fprintf(stderr, "route_namer_fuzz: invariant broken: %s: %.*s\n", what,
               static_cast<int>(route.size()), route.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  netprof::RouteNamerOptions options;
  options.keep_query = (data[0] & 1) != 0;
  options.collapse_ids = (data[0] & 2) != 0;
  options.redact = (data[0] & 4) == 0;
  options.max_segment_values = (data[0] >> 3) & 7;  // small caps reach {*} quickly
  options.max_positions = 16;
  netprof::RouteNamer namer(options);
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string route;
  while (true) {
    const auto nl = rest.find('\n');
    const std::string_view target = rest.substr(0, nl);
    namer.name(target, route);
    if (!netprof::is_clean_utf8(route)) fail("not clean UTF-8", route);
    if (route.empty()) fail("empty route", route);
    if (!target.empty() && target.front() == '/' && route.front() != '/')
      fail("origin-form target lost its '/'", route);
    if (namer.last_route_for(target) != route) fail("last_route_for disagrees", route);
    if (options.redact) {
      const std::string_view path = std::string_view(route).substr(0, route.find('?'));
      if (path.front() == '/') {
        if (path.find(';') != std::string_view::npos) fail("path parameter kept", route);
        size_t start = 1;
        while (start <= path.size()) {
          const auto slash = path.find('/', start);
          const std::string_view segment = path.substr(start, slash - start);
          if (netprof::is_secret_like(segment)) fail("secret-shaped segment kept", route);
          if (slash == std::string_view::npos) break;
          start = slash + 1;
        }
      }
    }
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return 0;
}
