#include "peer.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "net_util.h"
#include "sha256.h"

namespace netprof::torture {

PeerResult run_peer(int fd, const std::string& bytes, const std::string& prefix,
                    const std::function<size_t(size_t)>& allowed, std::mt19937_64& rng,
                    const PeerOptions& options) {
  set_nonblocking(fd);
  PeerResult result;
  Sha256 hash;
  hash.update(prefix);
  size_t received = prefix.size(), sent = 0;
  bool eof = false, shut = false;
  std::vector<char> buf(256 * 1024);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options.deadline_ms);
  auto pause = [&] {
    if (std::uniform_int_distribution<int>(0, 15)(rng) == 0)
      std::this_thread::sleep_for(std::chrono::microseconds(
          std::uniform_int_distribution<int>(50, 1500)(rng)));
  };
  while (!(eof && shut)) {
    if (std::chrono::steady_clock::now() > deadline) {
      result.error = "deadline: sent " + std::to_string(sent) + "/" +
                     std::to_string(bytes.size()) + ", received " + std::to_string(received);
      break;
    }
    const size_t may_send = std::min(bytes.size(), allowed(received));
    if (sent == bytes.size() && !shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
      continue;
    }
    pollfd p{fd, 0, 0};
    if (!eof) p.events |= POLLIN;
    if (sent < may_send) p.events |= POLLOUT;
    if (poll(&p, 1, 100) < 0 && errno != EINTR) {
      result.error = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (p.revents & POLLOUT) {
      const size_t want = std::min(
          may_send - sent, std::uniform_int_distribution<size_t>(1, options.max_write)(rng));
      const ssize_t n = send(fd, bytes.data() + sent, want, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        pause();
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        result.error = std::string("send: ") + std::strerror(errno);
        break;
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const size_t want = options.slow_reader
                              ? std::uniform_int_distribution<size_t>(1, 4096)(rng)
                              : buf.size();
      const ssize_t n = recv(fd, buf.data(), want, 0);
      if (n > 0) {
        hash.update(buf.data(), static_cast<size_t>(n));
        received += static_cast<size_t>(n);
        if (options.slow_reader) pause();
      } else if (n == 0) {
        eof = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        result.error = std::string("recv: ") + std::strerror(errno);
        break;
      }
    }
  }
  result.sent_bytes = sent;
  result.received_bytes = received;
  result.received_sha256 = hash.hex();
  return result;
}

}  // namespace netprof::torture
