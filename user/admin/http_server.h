// A small HTTP/1.1 server for the admin API: GET/HEAD (POST only on configured paths),
// keep-alive, responses with Content-Length or streamed until close. It serves local
// scrapers, probes, browsers and `netprof top/tap`, never the data path, and must stay
// answerable whatever clients do:
//  - one poll thread reads every request head (non-blocking): a slow client costs an fd and a
//    small buffer, never a thread; the whole head must arrive within request_timeout_ms of its
//    first byte (not per byte), an idle keep-alive connection closes after idle_timeout_ms;
//  - complete requests are answered on handler threads (at most max_handlers), with
//    reserved_handlers of them kept for priority_paths (/healthz, /metrics);
//  - at most max_connections open and max_per_client per client address: past either, the
//    oldest connection still waiting for its request (of that client, for the per-client limit)
//    is dropped to make room, so a flood of slow clients evicts itself;
//  - at the fd limit (EMFILE) a spare fd is given up to accept and close the waiting
//    connection, and accepting pauses briefly when even that fails: no busy loop;
//  - request heads are read by the one HTTP/1.1 framer (http/message_reader, on llhttp),
//    strictly: bad syntax is answered 400, a head over max_request_bytes 431;
//  - a request with a body (Content-Length > 0 or any Transfer-Encoding) is refused and the
//    connection closed, so a body is never read as the next request;
//  - the Host header must be localhost, an IP literal or a configured name: a browser page
//    that rebinds its DNS name to 127.0.0.1 cannot read the API.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/socket_address.h"
#include "base/unique_fd.h"

namespace netprof {

struct HttpRequest {
  std::string method;  // "GET"
  std::string path;    // "/metrics", percent-decoding not applied
  std::vector<std::pair<std::string, std::string>> query;  // decoded ?a=b&c=d
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased

  // The first value of a query parameter, or `fallback`.
  std::string_view param(std::string_view name, std::string_view fallback = {}) const;
  std::string_view header(std::string_view lower_name) const;
};

// What a streaming handler writes to; false from write() means the client is gone.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool write(std::string_view data) = 0;
  virtual bool open() const = 0;  // false once the client hung up or the server stops
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // When set, sent instead of `body`: one rendered document shared by every reader.
  std::shared_ptr<const std::string> shared_body;
  // When set (a quoted entity tag naming the body's exact bytes): sent as ETag with
  // "Cache-Control: no-cache", and a request whose If-None-Match carries it is answered 304
  // without the body. A browser polling the dashboard revalidates so by itself.
  std::string etag;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is produced by this function (on the connection's thread) until it
  // returns; the connection closes afterwards.
  std::function<void(StreamWriter&)> stream;

  static HttpResponse text(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  size_t max_connections = 256;    // open at once; past it the oldest waiting one is dropped
  size_t max_per_client = 32;      // per client address, the same way
  size_t max_handlers = 64;        // requests answered at once (threads)
  size_t reserved_handlers = 8;    // of max_handlers, only for priority_paths
  std::vector<std::string> priority_paths = {"/healthz", "/metrics"};
  int idle_timeout_ms = 30'000;    // keep-alive wait for the next request's first byte
  int request_timeout_ms = 10'000; // the whole request head, from its first byte
  int send_timeout_ms = 10'000;    // a client not reading for this long is dropped
  int response_timeout_ms = 60'000;  // a whole (non-streamed) response
  size_t max_request_bytes = 16 * 1024;
  // Host names accepted besides localhost and IP literals (case-insensitive, port ignored).
  std::vector<std::string> allowed_hosts;
  // Paths that also take POST (without a body, like every request here); others answer 405.
  std::vector<std::string> post_paths;
};

// Monotonic totals, readable from any thread.
struct HttpServerStats {
  uint64_t accepted = 0;
  uint64_t evicted = 0;        // waiting connections dropped to make room (limits)
  uint64_t refused = 0;        // closed at once: no room even after eviction
  uint64_t timed_out = 0;      // request head not complete in time, or idle too long
  uint64_t busy = 0;           // answered 503: every handler busy
  uint64_t bad_host = 0;       // answered 403 for the Host header
  uint64_t not_modified = 0;   // answered 304: the client had these bytes (If-None-Match)
  uint64_t fd_exhausted = 0;   // accepted and closed at the fd limit (EMFILE/ENFILE)
  uint64_t accept_pauses = 0;  // times accepting paused because even that failed
  uint64_t loop_wakeups = 0;   // poll thread iterations (a busy loop would show here)
};

class HttpServer {
 public:
  // Binds and starts serving on its own thread. Returns null and sets `error` on failure.
  static std::unique_ptr<HttpServer> start(const SocketAddress& address, HttpHandler handler,
                                           HttpServerOptions options, std::string& error);
  // The same on a socket already bound and listening (taken over, closed on failure):
  // connections may be queued in its backlog before the server reads any.
  static std::unique_ptr<HttpServer> start_on(UniqueFd listen_fd, HttpHandler handler,
                                              HttpServerOptions options, std::string& error);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const SocketAddress& address() const { return address_; }  // the bound address (real port)
  HttpServerStats stats() const;
  // Stops accepting, disconnects clients (streams end) and waits for every thread.
  void stop();

 private:
  struct Impl;
  HttpServer() = default;
  SocketAddress address_;
  std::unique_ptr<Impl> impl_;
};

std::string percent_decode(std::string_view text);

// Parses a request head (request line and headers, without the blank line). False when it
// is not one. Exposed for the fuzz target and tests.
bool parse_request_head(std::string_view head, HttpRequest& request, bool& keep_alive);

// True when `host` (a Host header value) names this machine safely: localhost, an IPv4 or
// [IPv6] literal, or one of `allowed` (case-insensitive); a port is ignored.
bool host_allowed(std::string_view host, const std::vector<std::string>& allowed);

}  // namespace netprof
