// A small HTTP/1.1 service with a realistic mix of routes (API calls, static assets, a slow
// endpoint, a flaky one, 404s), so a newcomer sees real per-URL stats without their own
// service. Thread per connection: it is a demo, not a data path.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "base/socket_address.h"
#include "base/unique_fd.h"

namespace netprof {

class DemoBackend {
 public:
  // Listens on `address` (port 0 = any free port). Throws std::runtime_error on failure.
  explicit DemoBackend(const SocketAddress& address);
  ~DemoBackend();
  DemoBackend(const DemoBackend&) = delete;
  DemoBackend& operator=(const DemoBackend&) = delete;

  const SocketAddress& address() const { return bound_; }
  void stop();

 private:
  void accept_loop();
  void serve(int fd);

  UniqueFd listen_fd_;
  SocketAddress bound_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::atomic<int> live_connections_{0};
};

}  // namespace netprof
