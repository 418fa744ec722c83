// Network namespaces by fd: open one from a path, run code inside it on the calling thread
// (setns, then back), read its cookie. A socket keeps the netns it was created in, so this
// is how the relay gets listeners and upstream sockets inside a pod without living there.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/expected.h"
#include "base/unique_fd.h"

namespace netprof {

class Netns {
 public:
  // A path such as /var/run/netns/NAME or /proc/PID/ns/net; empty = this thread's netns.
  static Expected<Netns> open(const std::string& path);

  int fd() const { return fd_.get(); }
  ino_t inode() const { return inode_; }
  const std::string& path() const { return path_; }

 private:
  UniqueFd fd_;
  ino_t inode_ = 0;
  std::string path_;
};

// Switches the calling thread into `target` and back into `home` when it goes out of scope.
// A no-op when both are the same namespace. If switching back fails the process aborts:
// a relay thread left in the pod's netns would open every later socket in the wrong place.
class NetnsGuard {
 public:
  NetnsGuard(const Netns& target, const Netns& home);
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;
  bool entered() const { return error_ == 0; }
  int error() const { return error_; }

 private:
  const Netns& home_;
  bool switched_ = false;
  int error_ = 0;
};

// The netns cookie of the namespace `socket_fd` lives in (SO_NETNS_COOKIE, Linux 5.14+);
// 0 when the kernel cannot tell.
uint64_t socket_netns_cookie(int socket_fd);

}  // namespace netprof
