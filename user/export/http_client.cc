#include "export/http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "base/unique_fd.h"
#include "http/message_reader.h"

namespace netprof {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

bool wait_for(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  while (true) {
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

// Connects (non-blocking with a deadline) to the first address that answers.
std::string connect_to(const Url& url, Clock::time_point deadline, UniqueFd& out) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(url.port);
  if (const int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &list); rc != 0) {
    return "cannot resolve " + url.host + ": " + gai_strerror(rc);
  }
  std::string error = "no address for " + url.host;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) continue;
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      error = "connect to " + url.host_header() + ": " + std::strerror(errno);
      continue;
    }
    if (!wait_for(fd.get(), POLLOUT, deadline)) {
      error = "connect to " + url.host_header() + ": timed out";
      continue;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
      error = "connect to " + url.host_header() + ": " + std::strerror(so_error);
      continue;
    }
    out.reset(fd.release());
    ::freeaddrinfo(list);
    return {};
  }
  ::freeaddrinfo(list);
  return error;
}

std::string send_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, deadline)) return "send timed out";
    } else {
      return std::string("send: ") + std::strerror(errno);
    }
  }
  return {};
}

std::string request_head(const Url& url, std::string_view method, std::string_view body,
                         std::string_view content_type,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string head;
  head.append(method).append(" ").append(url.path).append(" HTTP/1.1\r\nHost: ");
  head.append(url.host_header()).append("\r\nUser-Agent: netprof/0.1\r\nConnection: close\r\n");
  if (!content_type.empty()) head.append("Content-Type: ").append(content_type).append("\r\n");
  for (const auto& [k, v] : headers) head.append(k).append(": ").append(v).append("\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    head.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  head.append("\r\n");
  return head;
}

// Responses are for a collector's answer or the admin API's documents (a /stats of 10,000
// routes is ~5 MB): bounded, with room.
HttpReaderLimits response_limits() {
  HttpReaderLimits limits;
  limits.max_body_bytes = 256 * 1024 * 1024;
  return limits;
}

}  // namespace

bool Url::parse(std::string_view text, Url& out, std::string& error) {
  out = Url{};
  if (text.substr(0, 8) == "https://") {
    error = "https is not supported; push to a local collector or agent over http://";
    return false;
  }
  if (text.substr(0, 7) == "http://") text.remove_prefix(7);
  const auto slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  if (slash != std::string_view::npos) out.path = std::string(text.substr(slash));
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unclosed '[' in URL host";
      return false;
    }
    out.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':') port_text = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) {
    error = "URL '" + std::string(text) + "' has no host";
    return false;
  }
  if (!port_text.empty()) {
    unsigned port = 0;
    const auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (r.ec != std::errc() || r.ptr != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      error = "bad port '" + std::string(port_text) + "' in URL";
      return false;
    }
    out.port = static_cast<uint16_t>(port);
  }
  return true;
}

std::string Url::host_header() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

HttpResult http_request(const Url& url, std::string_view method, std::string_view body,
                        std::string_view content_type, int timeout_ms,
                        const std::vector<std::pair<std::string, std::string>>& headers) {
  HttpResult result;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  UniqueFd fd;
  if (result.error = connect_to(url, deadline, fd); !result.error.empty()) return result;
  const std::string head = request_head(url, method, body, content_type, headers);
  if (result.error = send_all(fd.get(), head, deadline); !result.error.empty()) return result;
  if (result.error = send_all(fd.get(), body, deadline); !result.error.empty()) return result;
  HttpMessageReader reader(HttpMessageKind::kResponse, response_limits());
  if (method == "HEAD") reader.expect_no_body();
  std::string carry;
  auto response = read_http_message(fd.get(), reader, carry, remaining_ms(deadline));
  if (!response.ok()) {
    result.error = "reading the response: " + response.error();
    return result;
  }
  result.status = response->status;
  result.body = std::move(response->body);
  return result;
}

std::string http_stream(const Url& url, int connect_timeout_ms, int& status,
                        const std::function<bool(std::string_view)>& on_data,
                        const std::function<bool()>& keep_going,
                        const std::vector<std::pair<std::string, std::string>>& headers) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(connect_timeout_ms);
  UniqueFd fd;
  if (auto error = connect_to(url, deadline, fd); !error.empty()) return error;
  if (auto error = send_all(fd.get(), request_head(url, "GET", {}, {}, headers), deadline); !error.empty()) {
    return error;
  }
  // The head only: the body is handed on as it comes, as the server sends it.
  HttpMessageReader reader(HttpMessageKind::kResponse, response_limits(), /*head_only=*/true);
  std::string rest;
  const auto head = read_http_message(fd.get(), reader, rest, remaining_ms(deadline));
  if (!head.ok()) return "reading the response: " + head.error();
  status = head->status;
  if (!rest.empty() && !on_data(rest)) return {};
  char chunk[16384];
  while (!keep_going || keep_going()) {
    pollfd p{fd.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, 200);
    if (n < 0 && errno != EINTR) return std::string("poll: ") + std::strerror(errno);
    if (n <= 0) continue;
    const ssize_t got = ::recv(fd.get(), chunk, sizeof chunk, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got < 0) return std::string("read: ") + std::strerror(errno);
    if (got == 0) return {};
    if (!on_data(std::string_view(chunk, static_cast<size_t>(got)))) return {};
  }
  return {};
}

}  // namespace netprof
