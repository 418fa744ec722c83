#include "base/expected.h"

#include <cstring>

namespace netprof {

Error errno_error(const std::string& what, int err) {
  return Error{what + ": " + std::strerror(err)};
}

}  // namespace netprof
