#include "admin/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "http/message_reader.h"

namespace netprof {
namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
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

// If-None-Match: "*" or a comma-separated list of entity tags, compared weakly (RFC 9110
// 13.1.2: a W/ prefix is ignored).
bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const size_t comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

using Clock = std::chrono::steady_clock;

// Writes all of `data` to a non-blocking socket before `deadline`; false if the client is gone
// or too slow.
bool send_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000))) < 0 && errno != EINTR)
        return false;
      continue;
    }
    return false;
  }
  return true;
}

// One non-blocking attempt, for the short error answers the poll thread writes itself.
void send_now(int fd, std::string_view data) {
  (void)!::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

std::string error_response(int status, std::string_view body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + std::string(body);
}

std::string peer_address(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, text, sizeof text);
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, text, sizeof text);
  }
  return text;
}

}  // namespace

// The request as the handlers see it: the target split into a path and a decoded query.
static HttpRequest request_of(HttpMessage message) {
  HttpRequest req;
  req.method = std::move(message.method);
  const std::string_view target = message.target;
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
  req.headers = std::move(message.headers);
  return req;
}

bool parse_request_head(std::string_view head, HttpRequest& req, bool& keep_alive) {
  HttpMessageReader reader(HttpMessageKind::kRequest, {}, /*head_only=*/true);
  const std::string whole = std::string(head) + "\r\n\r\n";
  size_t used = 0;
  if (reader.feed(whole, used) != HttpMessageReader::Status::kHead) return false;
  keep_alive = reader.message().keep_alive;
  req = request_of(reader.take_message());
  return true;
}

bool host_allowed(std::string_view host, const std::vector<std::string>& allowed) {
  // Only optional whitespace (SP, HTAB) around a field value is ignored: a bare CR left over
  // from a malformed line is not whitespace (RFC 9112 §2.2) and refuses the Host below.
  while (!host.empty() && (host.front() == ' ' || host.front() == '\t')) host.remove_prefix(1);
  while (!host.empty() && (host.back() == ' ' || host.back() == '\t')) host.remove_suffix(1);
  auto digits = [](std::string_view s) {
    return s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  if (host.empty()) return false;
  // Only what a host name, an address literal and a port are made of: anything else (a NUL
  // would end the text inet_pton sees early) is refused before any parsing.
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_';
    if (!ok) return false;
  }
  if (host.front() == '[') {  // [IPv6] or [IPv6]:port
    const auto end = host.find(']');
    if (end == std::string_view::npos) return false;
    const std::string_view rest = host.substr(end + 1);
    if (!rest.empty() && (rest.front() != ':' || !digits(rest.substr(1)))) return false;
    in6_addr a6{};
    return inet_pton(AF_INET6, std::string(host.substr(1, end - 1)).c_str(), &a6) == 1;
  }
  std::string_view name = host;
  if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    if (!digits(host.substr(colon + 1))) return false;
    name = host.substr(0, colon);
  }
  if (name.empty() || name.find(':') != std::string_view::npos) return false;
  if (name.back() == '.') name.remove_suffix(1);  // "localhost." is localhost
  in_addr a4{};
  if (inet_pton(AF_INET, std::string(name).c_str(), &a4) == 1) return true;
  const std::string lowered = lower(name);
  if (lowered == "localhost") return true;
  for (const std::string& a : allowed)
    if (lower(a) == lowered) return true;
  return false;
}

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
  UniqueFd listen_fd;
  UniqueFd wake_read, wake_write;  // a pipe: handler threads and stop() wake the poll thread
  UniqueFd spare_fd;  // given up at EMFILE to accept (and close) a waiting connection
  HttpHandler handler;
  HttpServerOptions options;
  std::thread poller;
  std::atomic<bool> stopping{false};

  // A connection whose next request head is being read (poll thread only).
  struct Waiting {
    std::string peer;
    std::string buffer;
    Clock::time_point since;       // accepted, or handed back after a response
    Clock::time_point first_byte;  // of the request being read
    bool have_bytes = false;
    bool draining = false;         // refused: the answer is sent, input is read and dropped
    uint64_t order = 0;            // lower = older (eviction order)
    // The request head read so far: `parsed` bytes of `buffer` were fed to `reader`, so a
    // client sending a byte at a time costs one pass over its head, not one per byte.
    std::optional<HttpMessageReader> reader = std::nullopt;
    size_t parsed = 0;
  };
  // Poll thread only.
  std::map<int, Waiting> waiting;
  std::unordered_map<std::string, size_t> per_client;  // open connections (waiting or busy)
  size_t open = 0;
  uint64_t next_order = 0;
  Clock::time_point accept_paused_until{};

  // A connection a handler thread is done with.
  struct Returned {
    int fd;
    std::string peer, leftover;
    bool close;
  };
  std::mutex mu;
  std::condition_variable all_done;
  std::vector<Returned> returned;  // guarded by mu
  std::set<int> busy_fds;          // guarded by mu; shut down on stop to end their streams
  size_t handlers = 0;             // guarded by mu

  std::atomic<uint64_t> accepted{0}, evicted{0}, refused{0}, timed_out{0}, busy{0}, bad_host{0},
      answered_304{0}, fd_exhausted{0}, accept_pauses{0}, loop_wakeups{0};

  void poll_loop();
  void accept_ready();
  void admit(int fd, std::string peer);
  bool evict_oldest(const std::string* peer);
  void read_ready(int fd);
  void try_process(int fd);
  void refuse(int fd, int status, std::string_view body);
  void close_conn(int fd);
  void take_back(std::vector<Returned>& items);
  Clock::time_point deadline_of(const Waiting& w) const;
  void answer(int fd, std::string peer, HttpRequest req, bool keep_alive, std::string leftover);
  void wake();
};

namespace {

class SocketStreamWriter final : public StreamWriter {
 public:
  SocketStreamWriter(int fd, const std::atomic<bool>& stopping, int send_timeout_ms)
      : fd_(fd), stopping_(stopping), send_timeout_ms_(send_timeout_ms) {}
  bool write(std::string_view data) override {
    return !stopping_.load() &&
           send_all(fd_, data, Clock::now() + std::chrono::milliseconds(send_timeout_ms_));
  }
  bool open() const override {
    if (stopping_.load()) return false;
    pollfd p{fd_, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 0 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0;
  }

 private:
  int fd_;
  const std::atomic<bool>& stopping_;
  int send_timeout_ms_;
};

constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr size_t kAcceptBurst = 64;  // accepts per wake-up, so reading is never starved

}  // namespace

std::unique_ptr<HttpServer> HttpServer::start(const SocketAddress& address, HttpHandler handler,
                                              HttpServerOptions options, std::string& error) {
  UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    error = std::strerror(errno);
    return nullptr;
  }
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), address.get(), address.length) != 0 || ::listen(fd.get(), 128) != 0) {
    error = "cannot listen on " + address.to_string() + ": " + std::strerror(errno);
    return nullptr;
  }
  return start_on(std::move(fd), std::move(handler), std::move(options), error);
}

std::unique_ptr<HttpServer> HttpServer::start_on(UniqueFd fd, HttpHandler handler,
                                                 HttpServerOptions options, std::string& error) {
  // Everything that can fail comes before the server exists: its destructor stops a running
  // poll thread.
  int pipe_fds[2];
  if (::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK) != 0 ||
      ::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    error = std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->address_.length = sizeof server->address_.storage;
  getsockname(fd.get(), server->address_.get(), &server->address_.length);
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;
  impl.listen_fd = std::move(fd);
  impl.wake_read.reset(pipe_fds[0]);
  impl.wake_write.reset(pipe_fds[1]);
  impl.spare_fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  impl.handler = std::move(handler);
  impl.options = std::move(options);
  impl.options.reserved_handlers = std::min(impl.options.reserved_handlers,
                                            impl.options.max_handlers > 0 ? impl.options.max_handlers - 1 : 0);
  impl.poller = std::thread([&impl] { impl.poll_loop(); });
  return server;
}

HttpServer::~HttpServer() { stop(); }

HttpServerStats HttpServer::stats() const {
  HttpServerStats s;
  if (!impl_) return s;
  const Impl& i = *impl_;
  s.accepted = i.accepted.load();
  s.evicted = i.evicted.load();
  s.refused = i.refused.load();
  s.timed_out = i.timed_out.load();
  s.busy = i.busy.load();
  s.bad_host = i.bad_host.load();
  s.not_modified = i.answered_304.load();
  s.fd_exhausted = i.fd_exhausted.load();
  s.accept_pauses = i.accept_pauses.load();
  s.loop_wakeups = i.loop_wakeups.load();
  return s;
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  impl_->wake();
  impl_->poller.join();  // closes every waiting connection on its way out
  std::unique_lock lock(impl_->mu);
  for (int fd : impl_->busy_fds) ::shutdown(fd, SHUT_RDWR);
  impl_->all_done.wait(lock, [this] { return impl_->handlers == 0; });
  for (const auto& r : impl_->returned) ::close(r.fd);
  impl_->returned.clear();
  lock.unlock();
  impl_->listen_fd.reset();
  impl_->wake_read.reset();
  impl_->wake_write.reset();
  impl_->spare_fd.reset();
}

void HttpServer::Impl::wake() {
  const char byte = 1;
  (void)!::write(wake_write.get(), &byte, 1);
}

Clock::time_point HttpServer::Impl::deadline_of(const Waiting& w) const {
  if (w.draining) return w.since + std::chrono::milliseconds(1000);
  return w.have_bytes ? w.first_byte + std::chrono::milliseconds(options.request_timeout_ms)
                      : w.since + std::chrono::milliseconds(options.idle_timeout_ms);
}

void HttpServer::Impl::poll_loop() {
  std::vector<pollfd> fds;
  std::vector<Returned> back;
  while (!stopping.load()) {
    loop_wakeups.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mu);
      back.swap(returned);
    }
    take_back(back);

    const auto now = Clock::now();
    Clock::time_point next = now + std::chrono::seconds(1);
    fds.clear();
    const bool accepting = now >= accept_paused_until;
    fds.push_back({wake_read.get(), POLLIN, 0});
    fds.push_back({listen_fd.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
    if (!accepting) next = std::min(next, accept_paused_until);
    for (const auto& [fd, w] : waiting) {
      fds.push_back({fd, POLLIN | POLLRDHUP, 0});
      next = std::min(next, deadline_of(w));
    }
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    if (::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wait_ms, 0) + 1)) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) {
      char drain[64];
      while (::read(wake_read.get(), drain, sizeof drain) > 0) {
      }
    }
    if (stopping.load()) break;
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents != 0 && waiting.count(fds[i].fd) != 0) read_ready(fds[i].fd);
    }
    if (fds[1].revents != 0) accept_ready();
    // Whole-request deadlines: a client trickling a byte at a time gets no more time for it.
    const auto after = Clock::now();
    std::vector<int> expired;
    for (const auto& [fd, w] : waiting)
      if (after >= deadline_of(w)) expired.push_back(fd);
    for (int fd : expired) {
      if (!waiting[fd].draining) timed_out.fetch_add(1, std::memory_order_relaxed);
      close_conn(fd);
    }
  }
  std::vector<int> all;
  for (const auto& [fd, w] : waiting) all.push_back(fd);
  for (int fd : all) close_conn(fd);
}

void HttpServer::Impl::take_back(std::vector<Returned>& items) {
  for (Returned& r : items) {
    if (r.close || stopping.load()) {
      // Still counted in per_client/open: close_conn needs an entry to account for it.
      waiting[r.fd] = Waiting{std::move(r.peer), {}, Clock::now(), {}, false, false, next_order++};
      close_conn(r.fd);
      continue;
    }
    Waiting w{std::move(r.peer), std::move(r.leftover), Clock::now(), Clock::now(), false, false,
              next_order++};
    w.have_bytes = !w.buffer.empty();  // a pipelined request: its deadline runs already
    waiting[r.fd] = std::move(w);
    try_process(r.fd);
  }
  items.clear();
}

void HttpServer::Impl::accept_ready() {
  for (size_t n = 0; n < kAcceptBurst; ++n) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = ::accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                             SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      admit(fd, peer_address(ss));
      // Read at once what already came with the connection: after a stall the backlog holds
      // more connections of one client than max_per_client, and a probe whose request is
      // already here must be answered, not evicted as the oldest still waiting.
      if (waiting.count(fd) != 0) read_ready(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if ((errno == EMFILE || errno == ENFILE) && spare_fd.valid()) {
      // Out of fds: the waiting connection would make poll report the listener readable
      // forever. Give up the spare fd to accept it and close it at once (the client sees a
      // close, not a hang), then take the spare back.
      spare_fd.reset();
      const int victim = ::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (victim >= 0) {
        ::close(victim);
        fd_exhausted.fetch_add(1, std::memory_order_relaxed);
      }
      spare_fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (victim >= 0 && spare_fd.valid()) continue;
    }
    // Nothing to shed with (or another error): stop watching the listener for a moment
    // instead of spinning on it.
    accept_paused_until = Clock::now() + kAcceptPause;
    accept_pauses.fetch_add(1, std::memory_order_relaxed);
    return;
  }
}

bool HttpServer::Impl::evict_oldest(const std::string* peer) {
  // Who goes first: a connection already refused (its answer is sent), then one holding a
  // part of a request head (what a slow client does), then the oldest of the rest (idle, or
  // accepted with nothing sent yet). A probe that connected just before a burst of slow
  // clients of the same address has not sent its request yet: it must not be the one dropped.
  auto rank = [](const Waiting& w) { return w.draining ? 0 : w.have_bytes ? 1 : 2; };
  int oldest = -1;
  int best_rank = 3;
  uint64_t order = UINT64_MAX;
  for (const auto& [fd, w] : waiting) {
    if (peer != nullptr && w.peer != *peer) continue;
    const int r = rank(w);
    if (r < best_rank || (r == best_rank && w.order < order)) {
      best_rank = r;
      order = w.order;
      oldest = fd;
    }
  }
  if (oldest < 0) return false;
  evicted.fetch_add(1, std::memory_order_relaxed);
  close_conn(oldest);
  return true;
}

void HttpServer::Impl::admit(int fd, std::string peer) {
  // Make room by dropping the oldest connection still waiting for its request: of this
  // client for the per-client limit, of anyone for the total. A flood evicts itself.
  const bool room = (per_client[peer] < options.max_per_client || evict_oldest(&peer)) &&
                    (open < options.max_connections || evict_oldest(nullptr));
  if (!room) {
    refused.fetch_add(1, std::memory_order_relaxed);
    send_now(fd, error_response(503, "too many admin connections\n"));
    ::close(fd);
    if (per_client[peer] == 0) per_client.erase(peer);
    return;
  }
  accepted.fetch_add(1, std::memory_order_relaxed);
  ++open;
  ++per_client[peer];
  waiting[fd] = Waiting{std::move(peer), {}, Clock::now(), {}, false, false, next_order++};
}

void HttpServer::Impl::close_conn(int fd) {
  auto it = waiting.find(fd);
  if (it == waiting.end()) return;
  if (auto pc = per_client.find(it->second.peer); pc != per_client.end() && --pc->second == 0)
    per_client.erase(pc);
  --open;
  waiting.erase(it);
  ::close(fd);
}

void HttpServer::Impl::read_ready(int fd) {
  Waiting& w = waiting[fd];
  char chunk[4096];
  while (true) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      if (w.draining) continue;  // refused: whatever follows (a body) is dropped, never parsed
      if (!w.have_bytes) {
        w.have_bytes = true;
        w.first_byte = Clock::now();
      }
      w.buffer.append(chunk, static_cast<size_t>(n));
      if (w.buffer.size() > options.max_request_bytes + 4) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return close_conn(fd);  // closed by the client, or an error
  }
  if (!w.draining) try_process(fd);
}

// Answers `status` and closes gracefully: the write side is shut, and input is read and
// dropped for a moment so that the answer is not destroyed by a reset (lingering close).
void HttpServer::Impl::refuse(int fd, int status, std::string_view body) {
  send_now(fd, error_response(status, body));
  ::shutdown(fd, SHUT_WR);
  Waiting& w = waiting[fd];
  w.draining = true;
  w.buffer.clear();
  w.reader.reset();
  w.since = Clock::now();
}

void HttpServer::Impl::try_process(int fd) {
  Waiting& w = waiting[fd];
  if (!w.reader) {
    // The head with its blank line: head_end <= max_request_bytes, as the option says.
    HttpReaderLimits limits;
    limits.max_head_bytes = options.max_request_bytes + 4;
    w.reader.emplace(HttpMessageKind::kRequest, limits, /*head_only=*/true);
  }
  size_t used = 0;
  const auto status = w.reader->feed(std::string_view(w.buffer).substr(w.parsed), used);
  w.parsed += used;
  if (status == HttpMessageReader::Status::kNeedMore) return;
  if (status == HttpMessageReader::Status::kError) {
    if (w.reader->over_limit()) return refuse(fd, 431, "request head too large\n");
    return refuse(fd, 400, "bad request\n");
  }
  const size_t head_end = w.parsed;
  const HttpMessage& head = w.reader->message();
  const bool keep_alive = head.keep_alive;
  // A body would be read as the next request if we ignored it: refuse and close instead.
  if (head.has_body()) return refuse(fd, 413, "the admin API takes no request bodies\n");
  const std::string_view host = head.header("host");
  // HTTP/1.1 requires Host (RFC 9112 3.2); a browser always sends one, so only 1.0 may omit it.
  const bool http10 = head.version_major == 1 && head.version_minor == 0;
  if (host.empty() ? !http10 : !host_allowed(host, options.allowed_hosts)) {
    bad_host.fetch_add(1, std::memory_order_relaxed);
    return refuse(fd, 403,
                  "Host not allowed: use localhost or an IP address, or allow the name "
                  "(--admin-allow-host)\n");
  }
  HttpRequest req = request_of(w.reader->take_message());
  const bool priority = std::find(options.priority_paths.begin(), options.priority_paths.end(),
                                  req.path) != options.priority_paths.end();
  {
    std::lock_guard lock(mu);
    const size_t limit = priority ? options.max_handlers
                                  : options.max_handlers - options.reserved_handlers;
    if (handlers >= limit) {
      busy.fetch_add(1, std::memory_order_relaxed);
      return refuse(fd, 503, "busy: try again\n");
    }
    ++handlers;
    busy_fds.insert(fd);
  }
  std::string leftover = w.buffer.substr(head_end);
  std::string peer = w.peer;
  // Out of the poll set while a handler thread owns it; still counted in open/per_client.
  waiting.erase(fd);
  std::thread([this, fd, peer = std::move(peer), req = std::move(req), keep_alive,
               leftover = std::move(leftover)]() mutable {
    answer(fd, std::move(peer), std::move(req), keep_alive, std::move(leftover));
  }).detach();  // accounted for in `handlers`; stop() waits for them
}

void HttpServer::Impl::answer(int fd, std::string peer, HttpRequest req, bool keep_alive,
                              std::string leftover) {
  HttpResponse res;
  const bool post_allowed =
      req.method == "POST" && std::find(options.post_paths.begin(), options.post_paths.end(),
                                        req.path) != options.post_paths.end();
  if (req.method != "GET" && req.method != "HEAD" && !post_allowed) {
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
  const bool not_modified =
      res.status == 200 && !res.etag.empty() && etag_matches(req.header("if-none-match"), res.etag);
  if (not_modified) {
    res.status = 304;
    answered_304.fetch_add(1, std::memory_order_relaxed);
  }
  std::string head = "HTTP/1.1 " + std::to_string(res.status) + " " + reason_phrase(res.status) +
                     "\r\nContent-Type: " + res.content_type + "\r\nCache-Control: " +
                     (res.etag.empty() ? "no-store" : "no-cache") + "\r\n";
  if (!res.etag.empty()) head += "ETag: " + res.etag + "\r\n";
  for (const auto& [k, v] : res.headers) head += k + ": " + v + "\r\n";
  // A shared body (one rendered document for every reader) is sent as is, never copied.
  const std::string_view body =
      res.shared_body ? std::string_view(*res.shared_body) : std::string_view(res.body);
  if (!res.stream) head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  head += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  // A 304 carries the length a 200 would have (RFC 9110 8.6) but never a body.
  const bool head_only = req.method == "HEAD" || not_modified;
  const auto deadline = Clock::now() + std::chrono::milliseconds(options.response_timeout_ms);
  bool ok = send_all(fd, head, deadline) &&
            (head_only || res.stream || send_all(fd, body, deadline));
  if (ok && res.stream && !head_only) {
    SocketStreamWriter writer(fd, stopping, options.send_timeout_ms);
    res.stream(writer);
  }
  if (!keep_alive) ::shutdown(fd, SHUT_WR);
  {
    std::lock_guard lock(mu);
    busy_fds.erase(fd);
    --handlers;
    returned.push_back({fd, std::move(peer), std::move(leftover), !ok || !keep_alive});
    // Under the lock: once `handlers` is 0, stop() closes the pipe (and its fd may be reused).
    wake();
    all_done.notify_all();
  }
}

}  // namespace netprof
