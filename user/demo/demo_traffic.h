// Drives a demo service with keep-alive clients that request a weighted mix of URLs.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "base/socket_address.h"

namespace netprof {

class DemoTraffic {
 public:
  DemoTraffic(const SocketAddress& target, int clients, int requests_per_second);
  ~DemoTraffic();
  void stop();
  uint64_t requests_sent() const { return sent_.load(); }

 private:
  void client_loop(unsigned seed);

  SocketAddress target_;
  int pause_us_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> sent_{0};
  std::vector<std::thread> clients_;
};

}  // namespace netprof
