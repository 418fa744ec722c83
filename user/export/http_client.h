// A minimal blocking HTTP/1.1 client over plain TCP: enough to push metrics to a collector
// and for `netprof top`/`tap` to read the admin API. No TLS: point it at a local collector
// or agent (the OpenTelemetry Collector, Prometheus' remote endpoints sit behind one).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace netprof {

struct Url {
  std::string host;  // name or address, without brackets
  uint16_t port = 80;
  std::string path = "/";  // with query
  // Accepts "http://host[:port][/path]", and "host:port[/path]" as a shorthand.
  static bool parse(std::string_view text, Url& out, std::string& error);
  std::string host_header() const;
};

struct HttpResult {
  int status = 0;           // 0 when no response was read
  std::string body;
  std::string error;        // why there was no response (connect refused, timeout, ...)
  bool ok() const { return status >= 200 && status < 300; }
};

HttpResult http_request(const Url& url, std::string_view method, std::string_view body = {},
                        std::string_view content_type = {}, int timeout_ms = 5000,
                        const std::vector<std::pair<std::string, std::string>>& headers = {});

// GETs `url` and hands the response body to `on_data` as it arrives, until on_data returns
// false, the server closes, or `keep_going` returns false (checked every 200 ms). Returns an
// error text, or empty on a clean end. `status` gets the response status.
std::string http_stream(const Url& url, int connect_timeout_ms, int& status,
                        const std::function<bool(std::string_view)>& on_data,
                        const std::function<bool()>& keep_going = {},
                        const std::vector<std::pair<std::string, std::string>>& headers = {});

}  // namespace netprof
