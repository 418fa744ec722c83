#include "demo/wire.h"

#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace netprof::demo_wire {
namespace {

bool fill(int fd, std::string& carry) {
  char buf[16384];
  ssize_t n;
  do {
    n = recv(fd, buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  carry.append(buf, static_cast<size_t>(n));
  return true;
}

size_t content_length(const std::string& head) {
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string::npos) {
    pos += 2;
    if (strncasecmp(head.c_str() + pos, "content-length:", 15) == 0)
      return std::strtoul(head.c_str() + pos + 15, nullptr, 10);
  }
  return 0;
}

}  // namespace

bool read_message(int fd, std::string& carry, Message& out) {
  size_t end;
  while ((end = carry.find("\r\n\r\n")) == std::string::npos) {
    if (carry.size() > 64 * 1024 || !fill(fd, carry)) return false;
  }
  out.head.assign(carry, 0, end);
  const size_t body_len = content_length(out.head);
  if (body_len > 16 * 1024 * 1024) return false;
  while (carry.size() < end + 4 + body_len) {
    if (!fill(fd, carry)) return false;
  }
  out.body.assign(carry, end + 4, body_len);
  carry.erase(0, end + 4 + body_len);
  return true;
}

bool write_all(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace netprof::demo_wire
