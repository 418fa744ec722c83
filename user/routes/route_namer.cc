#include "routes/route_namer.h"

namespace netprof {

RouteNamer::RouteNamer(RouteNamerOptions options) : options_(options) {}

void RouteNamer::name(std::string_view target, std::string& out) {
  // Absolute-form targets (proxies, "GET http://host/path") are reduced to their path.
  if (const auto scheme = target.find("://"); scheme != std::string_view::npos && target.front() != '/') {
    const auto path = target.find('/', scheme + 3);
    target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
  }
  // The fragment never reaches servers in practice; drop it if a client sent one anyway.
  if (const auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  if (!options_.keep_query) {
    if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  }
  if (target.empty()) target = "/";
  out.assign(target);
}

}  // namespace netprof
