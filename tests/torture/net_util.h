// Small socket helpers for the torture tests: RAII fds, loopback listeners and clients,
// bounded blocking I/O (every wait has a deadline so a broken relay fails a test instead of
// hanging it), and a fd-limit raiser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace netprof::torture {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1);
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

Fd listen_loopback(uint16_t* port, int backlog = 4096);  // port 0 = any; *port gets the real one
Fd connect_loopback(uint16_t port);                      // blocking connect; invalid on failure
void set_nonblocking(int fd);
void set_linger_reset(int fd);  // close() sends RST
uint16_t unused_port();         // a port nothing listens on (bound then released)

bool send_all(int fd, std::string_view bytes, int timeout_ms = 10000);
// Reads until EOF, error, `limit` bytes or the deadline. `how` gets "eof", "reset", "timeout"
// or "limit".
std::string read_until_close(int fd, int timeout_ms, std::string* how = nullptr,
                             size_t limit = SIZE_MAX);
// Reads one HTTP response (http/message_reader) and returns its bytes as they came. Empty on
// failure.
std::string read_http_response(int fd, int timeout_ms = 10000);

// A GET on a new connection through `port`; returns the status code (0 on failure).
int http_get_status(uint16_t port, std::string_view path, int timeout_ms = 10000);

// Raises RLIMIT_NOFILE's soft limit to `want` (capped at the hard limit); returns the result.
uint64_t raise_nofile(uint64_t want);
uint64_t nofile_hard_limit();

}  // namespace netprof::torture
