// Decides where a relayed connection goes and opens the upstream socket. Proxy mode dials a
// fixed target; eBPF interception dials the connection's original destination from inside
// the pod's network namespace, marked so the BPF programs let it through.
#pragma once

#include <string>

#include "base/socket_address.h"
#include "base/unique_fd.h"

namespace netprof {

struct DialResult {
  UniqueFd fd;    // non-blocking socket with connect() in progress or done; invalid on failure
  int error = 0;  // errno when fd is invalid
  uint16_t port = 0;  // the destination's port (TLS connections are counted per server port)
};

// A dialer is called from the loop thread of the worker whose listener it serves; one shared
// by listeners of several workers must be safe to call concurrently.
class UpstreamDialer {
 public:
  virtual ~UpstreamDialer() = default;
  // Opens the upstream connection for the accepted client socket `client_fd`.
  virtual DialResult dial(int client_fd) = 0;
};

// Dials one fixed address (netprof proxy --target).
class FixedTargetDialer final : public UpstreamDialer {
 public:
  explicit FixedTargetDialer(SocketAddress target) : target_(target) {}
  DialResult dial(int client_fd) override;

 private:
  SocketAddress target_;
};

// Starts a non-blocking connect to `to`, optionally from `from`. Shared by dialers.
DialResult dial_nonblocking(const SocketAddress& to, const SocketAddress* from = nullptr);

}  // namespace netprof
