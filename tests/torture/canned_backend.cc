#include "canned_backend.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/message_reader.h"

namespace netprof::torture {
namespace {

struct Conn {
  int fd;
  // Requests are bodiless: each is answered when its head is complete.
  HttpMessageReader reader{HttpMessageKind::kRequest, {}, /*head_only=*/true};
  bool unreadable = false;  // not HTTP/1.1 any more (a body, garbage): later bytes are dropped
  std::string out;          // owed to the client
  bool reset_after_flush = false;
};

void on_bytes(Conn& c, const char* p, size_t n, uint64_t& requests) {
  std::string_view bytes(p, n);
  while (!bytes.empty() && !c.unreadable) {
    size_t used = 0;
    const auto status = c.reader.feed(bytes, used);
    bytes.remove_prefix(used);
    if (status == HttpMessageReader::Status::kNeedMore) return;
    if (status == HttpMessageReader::Status::kError) {
      c.unreadable = true;
      return;
    }
    ++requests;
    const std::string_view target = c.reader.message().target;
    if (target.substr(0, 6) == "/reset") {
      c.out += "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial";
      c.reset_after_flush = true;
    } else if (target.substr(0, 5) != "/hold") {
      c.out += kCannedResponse;
    }
    c.reader.next();
  }
}

void serve(int listen_fd, const std::atomic<bool>* stop, std::atomic<uint64_t>* requests_out,
           std::atomic<uint64_t>* connections_out) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;
  epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev);
  std::unordered_map<int, std::unique_ptr<Conn>> conns;
  std::vector<epoll_event> events(512);
  std::vector<char> buf(256 * 1024);
  uint64_t requests = 0;
  auto drop = [&](Conn* c, bool reset) {
    if (reset) set_linger_reset(c->fd);
    close(c->fd);
    conns.erase(c->fd);
  };
  while (!stop || !stop->load()) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 50);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        for (int k = 0; k < 256; ++k) {
          const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          auto c = std::make_unique<Conn>();
          c->fd = fd;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = c.get();
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
          conns.emplace(fd, std::move(c));
          if (connections_out) connections_out->fetch_add(1);
        }
        continue;
      }
      Conn* c = static_cast<Conn*>(events[i].data.ptr);
      bool gone = false;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        const ssize_t r = recv(c->fd, buf.data(), buf.size(), 0);
        if (r > 0) {
          on_bytes(*c, buf.data(), static_cast<size_t>(r), requests);
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          drop(c, false);
          gone = true;
        }
      }
      if (gone) continue;
      while (!c->out.empty()) {
        const ssize_t w = send(c->fd, c->out.data(), c->out.size(), MSG_NOSIGNAL);
        if (w <= 0) break;
        c->out.erase(0, static_cast<size_t>(w));
      }
      if (c->out.empty() && c->reset_after_flush) {
        drop(c, true);
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | (c->out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
      ev.data.ptr = c;
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (requests_out) requests_out->store(requests);
  }
  for (auto& [fd, c] : conns) close(fd);
  close(ep);
}

}  // namespace

CannedBackend::CannedBackend(uint16_t port) : port_(port) {
  listener_ = listen_loopback(&port_);
  set_nonblocking(listener_.get());
  thread_ = std::thread([this] { serve(listener_.get(), &stop_, &requests_, &connections_); });
}

CannedBackend::~CannedBackend() {
  stop_ = true;
  thread_.join();
}

pid_t CannedBackend::fork_child(uint16_t* port, uint64_t nofile_limit) {
  Fd listener = listen_loopback(port);
  set_nonblocking(listener.get());
  const pid_t pid = fork();
  if (pid == 0) {
    const rlimit r{nofile_limit, nofile_limit};
    setrlimit(RLIMIT_NOFILE, &r);
    serve(listener.get(), nullptr, nullptr, nullptr);
    _exit(0);
  }
  return pid;
}

}  // namespace netprof::torture
