// A small HTTP/1.1 server for the admin API: GET only, one thread per connection (capped),
// keep-alive, responses with Content-Length or streamed until close. Deliberately tiny: it
// serves a handful of local scrapers, browsers and `netprof top/tap`, never the data path.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/upstream_dialer.h"  // SocketAddress

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
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is produced by this function (on the connection's thread) until it
  // returns; the connection closes afterwards.
  std::function<void(StreamWriter&)> stream;

  static HttpResponse text(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  size_t max_connections = 64;     // more are answered 503 and closed
  int idle_timeout_ms = 30'000;    // keep-alive connections idle longer are closed
  int send_timeout_ms = 10'000;    // a client not reading for this long is dropped
  size_t max_request_bytes = 16 * 1024;
};

class HttpServer {
 public:
  // Binds and starts serving on its own thread. Returns null and sets `error` on failure.
  static std::unique_ptr<HttpServer> start(const SocketAddress& address, HttpHandler handler,
                                           HttpServerOptions options, std::string& error);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const SocketAddress& address() const { return address_; }  // the bound address (real port)
  // Stops accepting, disconnects clients (streams end) and waits for every thread.
  void stop();

 private:
  struct Impl;
  HttpServer() = default;
  SocketAddress address_;
  std::unique_ptr<Impl> impl_;
};

std::string percent_decode(std::string_view text);

}  // namespace netprof
