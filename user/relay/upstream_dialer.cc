#include "relay/upstream_dialer.h"

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netdb.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

namespace netprof {

DialResult dial_nonblocking(const SocketAddress& to, const SocketAddress* from) {
  UniqueFd fd(socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd.valid()) return {UniqueFd(), errno};
  if (from != nullptr && bind(fd.get(), from->get(), from->length) != 0) return {UniqueFd(), errno};
  if (connect(fd.get(), to.get(), to.length) != 0 && errno != EINPROGRESS)
    return {UniqueFd(), errno};
  return {std::move(fd), 0, to.port()};
}

DialResult FixedTargetDialer::dial(int /*client_fd*/) { return dial_nonblocking(target_); }

}  // namespace netprof
