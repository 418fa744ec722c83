#include "admin/http_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

namespace netprof {
namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

void set_timeout(int fd, int option, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Parses the head (request line + headers, without the final blank line).
bool parse_head(std::string_view head, HttpRequest& req, bool& keep_alive) {
  const auto line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  req.method = std::string(line.substr(0, sp1));
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version.substr(0, 5) != "HTTP/") return false;
  const auto q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
      const auto amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      const auto eq = pair.find('=');
      if (!pair.empty()) {
        req.query.emplace_back(percent_decode(pair.substr(0, eq)),
                               eq == std::string_view::npos ? std::string()
                                                            : percent_decode(pair.substr(eq + 1)));
      }
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  if (line_end != std::string_view::npos) {
    std::string_view rest = head.substr(line_end + 2);
    while (!rest.empty()) {
      const auto end = rest.find("\r\n");
      const std::string_view h = rest.substr(0, end);
      if (const auto colon = h.find(':'); colon != std::string_view::npos) {
        req.headers.emplace_back(lower(trim(h.substr(0, colon))), std::string(trim(h.substr(colon + 1))));
      }
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 2);
    }
  }
  const std::string connection = lower(req.header("connection"));
  keep_alive = version == "HTTP/1.1" ? connection != "close" : connection == "keep-alive";
  return true;
}

}  // namespace

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else if (text[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string_view HttpRequest::param(std::string_view name, std::string_view fallback) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return fallback;
}

std::string_view HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

HttpResponse HttpResponse::text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

struct HttpServer::Impl {
  int listen_fd = -1;
  int wake_pipe[2] = {-1, -1};
  HttpHandler handler;
  HttpServerOptions options;
  std::thread acceptor;
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable all_done;
  std::set<int> client_fds;  // guarded by mu; shut down on stop to wake their threads
  size_t threads = 0;        // guarded by mu

  void accept_loop();
  void serve(int fd);
  void finish(int fd);
};

namespace {

class SocketStreamWriter final : public StreamWriter {
 public:
  SocketStreamWriter(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}
  bool write(std::string_view data) override { return !stopping_.load() && send_all(fd_, data); }
  bool open() const override {
    if (stopping_.load()) return false;
    pollfd p{fd_, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 0 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0;
  }

 private:
  int fd_;
  const std::atomic<bool>& stopping_;
};

}  // namespace

std::unique_ptr<HttpServer> HttpServer::start(const SocketAddress& address, HttpHandler handler,
                                              HttpServerOptions options, std::string& error) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return nullptr;
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, address.get(), address.length) != 0 || ::listen(fd, 128) != 0) {
    error = "cannot listen on " + address.to_string() + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->address_.length = sizeof server->address_.storage;
  getsockname(fd, server->address_.get(), &server->address_.length);
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;
  impl.listen_fd = fd;
  impl.handler = std::move(handler);
  impl.options = options;
  if (::pipe2(impl.wake_pipe, O_CLOEXEC) != 0) {
    error = std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  impl.acceptor = std::thread([&impl] { impl.accept_loop(); });
  return server;
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  const char byte = 1;
  (void)!::write(impl_->wake_pipe[1], &byte, 1);
  impl_->acceptor.join();
  std::unique_lock lock(impl_->mu);
  for (int fd : impl_->client_fds) ::shutdown(fd, SHUT_RDWR);
  impl_->all_done.wait(lock, [this] { return impl_->threads == 0; });
  lock.unlock();
  ::close(impl_->listen_fd);
  ::close(impl_->wake_pipe[0]);
  ::close(impl_->wake_pipe[1]);
}

void HttpServer::Impl::accept_loop() {
  pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
  while (!stopping.load()) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // EMFILE and friends: the client sees a reset, we keep serving
    std::lock_guard lock(mu);
    if (threads >= options.max_connections) {
      send_all(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      ::close(fd);
      continue;
    }
    ++threads;
    client_fds.insert(fd);
    std::thread([this, fd] { serve(fd); }).detach();  // finish() accounts for it
  }
}

void HttpServer::Impl::finish(int fd) {
  std::lock_guard lock(mu);
  client_fds.erase(fd);
  ::close(fd);
  --threads;
  all_done.notify_all();
}

void HttpServer::Impl::serve(int fd) {
  set_timeout(fd, SO_RCVTIMEO, options.idle_timeout_ms);
  set_timeout(fd, SO_SNDTIMEO, options.send_timeout_ms);
  std::string buffer;
  char chunk[4096];
  while (!stopping.load()) {
    size_t head_end;
    while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (buffer.size() > options.max_request_bytes) {
        send_all(fd, "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return finish(fd);
      }
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return finish(fd);  // closed, idle timeout or shut down by stop()
      buffer.append(chunk, static_cast<size_t>(n));
    }
    HttpRequest req;
    bool keep_alive = false;
    const bool parsed = parse_head(std::string_view(buffer).substr(0, head_end), req, keep_alive);
    buffer.erase(0, head_end + 4);
    HttpResponse res;
    if (!parsed) {
      res = HttpResponse::text(400, "bad request\n");
      keep_alive = false;
    } else if (!req.header("content-length").empty() && req.header("content-length") != "0") {
      res = HttpResponse::text(413, "the admin API takes no request bodies\n");
      keep_alive = false;
    } else if (req.method != "GET" && req.method != "HEAD") {
      res = HttpResponse::text(405, "only GET and HEAD\n");
      res.headers.emplace_back("Allow", "GET, HEAD");
    } else {
      try {
        res = handler(req);
      } catch (const std::exception& e) {
        res = HttpResponse::text(500, std::string("internal error: ") + e.what() + "\n");
      }
    }
    if (res.stream) keep_alive = false;
    std::string head = "HTTP/1.1 " + std::to_string(res.status) + " " + reason_phrase(res.status) +
                       "\r\nContent-Type: " + res.content_type + "\r\nCache-Control: no-store\r\n";
    for (const auto& [k, v] : res.headers) head += k + ": " + v + "\r\n";
    if (!res.stream) head += "Content-Length: " + std::to_string(res.body.size()) + "\r\n";
    head += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    const bool head_only = req.method == "HEAD";
    if (!send_all(fd, head) || (!head_only && !res.stream && !send_all(fd, res.body))) {
      return finish(fd);
    }
    if (res.stream && !head_only) {
      SocketStreamWriter writer(fd, stopping);
      res.stream(writer);
    }
    if (!keep_alive) {
      ::shutdown(fd, SHUT_WR);
      return finish(fd);
    }
  }
  finish(fd);
}

}  // namespace netprof
