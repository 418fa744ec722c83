// An IPv4 or IPv6 socket address, and "ADDR:PORT" text to one.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
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

}  // namespace netprof
