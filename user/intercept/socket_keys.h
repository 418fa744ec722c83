// Conversions between socket addresses (what getsockname/getpeername give user space) and
// the BPF map keys and values of netprof_shared.h.
#pragma once

#include "netprof_shared.h"
#include "base/socket_address.h"

namespace netprof {

// The tuple as the socket with addresses `local`/`remote` sees it. Both must be the same
// family (AF_INET or AF_INET6); returns false otherwise.
bool make_tuple(const SocketAddress& local, const SocketAddress& remote, netprof_tuple& out);

// The tuple of a connected socket, from getsockname/getpeername. Returns false (errno set)
// if the socket is not connected.
bool socket_tuple(int fd, netprof_tuple& out);

// `tuple` in the network namespace with `netns_cookie`: the key of every tuple-keyed map.
netprof_sock_key sock_key(uint64_t netns_cookie, const netprof_tuple& tuple);

SocketAddress endpoint_address(const netprof_endpoint& endpoint);
netprof_endpoint address_endpoint(const SocketAddress& address);

SocketAddress local_address(int fd);   // getsockname; length 0 on failure
SocketAddress peer_address(int fd);    // getpeername; length 0 on failure

// A copy of `address` with the port replaced (host order).
SocketAddress with_port(const SocketAddress& address, uint16_t port);
uint16_t port_of(const SocketAddress& address);

}  // namespace netprof
