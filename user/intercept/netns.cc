#include "intercept/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace netprof {

Expected<Netns> Netns::open(const std::string& path) {
  const std::string real = path.empty() ? "/proc/thread-self/ns/net" : path;
  Netns ns;
  ns.fd_.reset(::open(real.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.fd_.valid()) return errno_error("cannot open network namespace " + real, errno);
  struct stat st {};
  if (fstat(ns.fd_.get(), &st) != 0) return errno_error("fstat " + real, errno);
  ns.inode_ = st.st_ino;
  ns.path_ = real;
  // setns() would check the type later; checking here names the path the user typed.
  if (ioctl(ns.fd_.get(), NS_GET_NSTYPE) != CLONE_NEWNET)
    return Error{real + " is not a network namespace"};
  return ns;
}

NetnsGuard::NetnsGuard(const Netns& target, const Netns& home) : home_(home) {
  if (target.inode() == home.inode()) return;
  if (setns(target.fd(), CLONE_NEWNET) != 0) {
    error_ = errno;
    return;
  }
  switched_ = true;
}

NetnsGuard::~NetnsGuard() {
  if (!switched_) return;
  if (setns(home_.fd(), CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "netprof: cannot return to the home network namespace: %s\n",
                 std::strerror(errno));
    std::abort();
  }
}

uint64_t socket_netns_cookie(int socket_fd) {
  uint64_t cookie = 0;
  socklen_t length = sizeof(cookie);
  if (getsockopt(socket_fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &length) != 0) return 0;
  return cookie;
}

}  // namespace netprof
