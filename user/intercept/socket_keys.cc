#include "intercept/socket_keys.h"

#include <arpa/inet.h>

#include <cstring>

namespace netprof {
namespace {

void copy_ip(const SocketAddress& address, __u32 out[4]) {
  std::memset(out, 0, 4 * sizeof(__u32));
  if (address.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address.get());
    out[0] = in->sin_addr.s_addr;
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address.get());
    std::memcpy(out, &in6->sin6_addr, 16);
  }
}

}  // namespace

uint16_t port_of(const SocketAddress& address) {
  if (address.family() == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(address.get())->sin_port);
  if (address.family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(address.get())->sin6_port);
  return 0;
}

SocketAddress with_port(const SocketAddress& address, uint16_t port) {
  SocketAddress copy = address;
  if (copy.family() == AF_INET)
    reinterpret_cast<sockaddr_in*>(copy.get())->sin_port = htons(port);
  else if (copy.family() == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(copy.get())->sin6_port = htons(port);
  return copy;
}

bool make_tuple(const SocketAddress& local, const SocketAddress& remote, netprof_tuple& out) {
  std::memset(&out, 0, sizeof(out));
  if (local.family() != remote.family()) return false;
  if (local.family() != AF_INET && local.family() != AF_INET6) return false;
  out.family = static_cast<__u16>(local.family());
  copy_ip(local, out.local_ip);
  copy_ip(remote, out.remote_ip);
  out.local_port = port_of(local);
  out.remote_port = port_of(remote);
  return true;
}

SocketAddress local_address(int fd) {
  SocketAddress address;
  address.length = sizeof(address.storage);
  if (getsockname(fd, address.get(), &address.length) != 0) address.length = 0;
  return address;
}

SocketAddress peer_address(int fd) {
  SocketAddress address;
  address.length = sizeof(address.storage);
  if (getpeername(fd, address.get(), &address.length) != 0) address.length = 0;
  return address;
}

bool socket_tuple(int fd, netprof_tuple& out) {
  const SocketAddress local = local_address(fd);
  const SocketAddress remote = peer_address(fd);
  if (local.length == 0 || remote.length == 0) return false;
  return make_tuple(local, remote, out);
}

netprof_sock_key sock_key(uint64_t netns_cookie, const netprof_tuple& tuple) {
  netprof_sock_key key;
  std::memset(&key, 0, sizeof(key));
  key.netns_cookie = netns_cookie;
  key.tuple = tuple;
  return key;
}

SocketAddress endpoint_address(const netprof_endpoint& endpoint) {
  SocketAddress address;
  if (endpoint.family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(address.get());
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = endpoint.ip[0];
    in->sin_port = htons(endpoint.port);
    address.length = sizeof(sockaddr_in);
  } else if (endpoint.family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(address.get());
    in6->sin6_family = AF_INET6;
    std::memcpy(&in6->sin6_addr, endpoint.ip, 16);
    in6->sin6_port = htons(endpoint.port);
    address.length = sizeof(sockaddr_in6);
  }
  return address;
}

netprof_endpoint address_endpoint(const SocketAddress& address) {
  netprof_endpoint endpoint;
  std::memset(&endpoint, 0, sizeof(endpoint));
  endpoint.family = static_cast<__u16>(address.family());
  copy_ip(address, endpoint.ip);
  endpoint.port = port_of(address);
  return endpoint;
}

}  // namespace netprof
