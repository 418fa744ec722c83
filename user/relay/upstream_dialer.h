// Decides where a relayed connection goes and opens the upstream socket. Proxy mode dials a
// fixed target; eBPF interception dials the connection's original destination from inside
// the pod's network namespace, marked so the BPF programs let it through.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace netprof {

// A socket address that fits IPv4 and IPv6.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
  std::string to_string() const;  // "127.0.0.1:8087", "[::1]:8087"
  uint16_t port() const;          // host order; 0 for other families
};

// Parses "ADDR:PORT", "[V6]:PORT" or ":PORT"/"PORT" (then `default_host`). Returns false and
// fills `error` with what to change on bad input.
bool parse_socket_address(const std::string& text, const std::string& default_host,
                          SocketAddress& out, std::string& error);

struct DialResult {
  int fd = -1;     // non-blocking socket with connect() in progress or done; -1 on failure
  int error = 0;   // errno when fd == -1
  uint16_t port = 0;  // the destination's port (TLS connections are counted per server port)
};

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
