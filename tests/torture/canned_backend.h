// A fast, single-threaded epoll HTTP backend for fault and volume tests: answers every request
// (bodiless requests, pipelined or not) with one canned response. Paths starting with
// "/reset" get half a response and then a TCP reset; paths starting with "/hold" get none.
// It can also run in a forked child, for tests that need more fds than one process may hold.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "net_util.h"

namespace netprof::torture {

inline constexpr std::string_view kCannedResponse =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

class CannedBackend {
 public:
  // Listens on 127.0.0.1:port (0 = any). Serves on a thread until destroyed.
  explicit CannedBackend(uint16_t port = 0);
  ~CannedBackend();
  CannedBackend(const CannedBackend&) = delete;
  CannedBackend& operator=(const CannedBackend&) = delete;
  uint16_t port() const { return port_; }
  uint64_t requests() const { return requests_.load(); }
  uint64_t connections() const { return connections_.load(); }

  // Serves in a forked child with its own fd limit; returns the child's pid (kill it with
  // SIGKILL and reap it when done). *port gets the port.
  static pid_t fork_child(uint16_t* port, uint64_t nofile_limit);

 private:
  void loop();
  uint16_t port_ = 0;
  Fd listener_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0}, connections_{0};
  std::thread thread_;
};

}  // namespace netprof::torture
