// Turns a raw request-target into the route that stats are keyed by. By default the query
// string and fragment are dropped (they may carry secrets). Templating (user patterns, ID
// collapse, cardinality caps) lives here too.
#pragma once

#include <string>
#include <string_view>

namespace netprof {

struct RouteNamerOptions {
  bool keep_query = false;  // store the query string too (off by default: privacy)
};

class RouteNamer {
 public:
  explicit RouteNamer(RouteNamerOptions options = {});
  virtual ~RouteNamer() = default;
  // Writes the route for `target` into `out` (reusing its capacity: no allocation once warm).
  // Not const: templating keeps per-segment cardinality state. Callers serialise calls.
  virtual void name(std::string_view target, std::string& out);

 private:
  RouteNamerOptions options_;
};

}  // namespace netprof
