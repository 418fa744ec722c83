#include "net_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "http/message_reader.h"

namespace netprof::torture {
namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, int64_t deadline) {
  while (true) {
    const int64_t left = deadline - now_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

}  // namespace

void Fd::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

Fd listen_loopback(uint16_t* port, int backlog) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(*port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      listen(fd.get(), backlog) != 0)
    return Fd();
  socklen_t len = sizeof a;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

Fd connect_loopback(uint16_t port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_in a = loopback(port);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  const int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void set_linger_reset(int fd) {
  const linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

uint16_t unused_port() {
  uint16_t port = 0;
  Fd fd = listen_loopback(&port);
  return port;  // closed on return: nothing listens there now
}

bool send_all(int fd, std::string_view bytes, int timeout_ms) {
  const int64_t deadline = now_ms() + timeout_ms;
  while (!bytes.empty()) {
    const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  return true;
}

std::string read_until_close(int fd, int timeout_ms, std::string* how, size_t limit) {
  const int64_t deadline = now_ms() + timeout_ms;
  std::string out;
  char buf[65536];
  while (out.size() < limit) {
    const ssize_t n = recv(fd, buf, std::min(sizeof buf, limit - out.size()), MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      if (how) *how = "eof";
      return out;
    }
    if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(fd, POLLIN, deadline)) {
        if (how) *how = "timeout";
        return out;
      }
      continue;
    }
    if (how) *how = "reset";
    return out;
  }
  if (how) *how = "limit";
  return out;
}

std::string read_http_response(int fd, int timeout_ms) {
  HttpMessageReader reader(HttpMessageKind::kResponse);
  std::string carry, wire;
  return read_http_message(fd, reader, carry, timeout_ms, &wire).ok() ? wire : std::string();
}

int http_get_status(uint16_t port, std::string_view path, int timeout_ms) {
  Fd fd = connect_loopback(port);
  if (!fd) return 0;
  std::string req = "GET ";
  req.append(path);
  req += " HTTP/1.1\r\nHost: torture\r\n\r\n";
  if (!send_all(fd.get(), req, timeout_ms)) return 0;
  HttpMessageReader reader(HttpMessageKind::kResponse);
  std::string carry;
  const auto response = read_http_message(fd.get(), reader, carry, timeout_ms);
  return response.ok() ? response->status : 0;
}

uint64_t nofile_hard_limit() {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  return r.rlim_max;
}

uint64_t raise_nofile(uint64_t want) {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < want) {
    rlimit n{want, std::max<rlim_t>(want, r.rlim_max)};
    if (setrlimit(RLIMIT_NOFILE, &n) != 0) {  // raising the hard limit needs CAP_SYS_RESOURCE
      n = {std::min<rlim_t>(want, r.rlim_max), r.rlim_max};
      setrlimit(RLIMIT_NOFILE, &n);
    }
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur;
}

}  // namespace netprof::torture
