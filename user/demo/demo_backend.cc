#include "demo/demo_backend.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>

#include "demo/wire.h"
#include "http/message_reader.h"
#include "relay/relay.h"

namespace netprof {
namespace {

struct Reply {
  int status;
  const char* reason;
  const char* type;
  std::string body;
  int delay_ms = 0;
};

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

Reply route(std::string_view method, std::string_view target, std::mt19937& rng) {
  const std::string_view path = path_of(target);
  auto jitter = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  if (path == "/") return {200, "OK", "text/html", "<h1>netprof demo shop</h1>", 0};
  if (path.starts_with("/api/users/") && method == "GET")
    return {200, "OK", "application/json", R"({"id":1,"name":"ada"})", jitter(1, 4)};
  if (path == "/api/orders" && method == "POST")
    return {201, "Created", "application/json", R"({"order":"ok"})", jitter(3, 8)};
  if (path == "/api/orders") return {200, "OK", "application/json", "[]", jitter(2, 6)};
  if (path == "/api/search") return {200, "OK", "application/json", "[]", jitter(20, 80)};
  if (path == "/api/checkout") {
    if (jitter(1, 10) == 1) return {500, "Internal Server Error", "text/plain", "boom", jitter(5, 15)};
    return {200, "OK", "application/json", R"({"paid":true})", jitter(10, 30)};
  }
  if (path == "/static/app.js") return {200, "OK", "text/javascript", std::string(20000, 'j'), 0};
  if (path == "/static/style.css") return {200, "OK", "text/css", std::string(4000, 'c'), 0};
  if (path == "/logo.png") return {200, "OK", "image/png", std::string(9000, 'p'), 0};
  if (path == "/healthz") return {204, "No Content", "text/plain", "", 0};
  return {404, "Not Found", "text/plain", "not found", 0};
}

}  // namespace

DemoBackend::DemoBackend(const SocketAddress& address) {
  listen_fd_ = listen_tcp(address, 512);
  if (!listen_fd_.valid())
    throw std::runtime_error("demo backend cannot listen on " + address.to_string() + ": " +
                             std::strerror(errno));
  bound_.length = sizeof bound_.storage;
  getsockname(listen_fd_.get(), bound_.get(), &bound_.length);
  acceptor_ = std::thread([this] { accept_loop(); });
}

DemoBackend::~DemoBackend() { stop(); }

void DemoBackend::stop() {
  if (stopping_.exchange(true)) return;
  if (acceptor_.joinable()) acceptor_.join();
  listen_fd_.reset();
  while (live_connections_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void DemoBackend::accept_loop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_.get(), POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    live_connections_.fetch_add(1);
    std::thread([this, fd] {
      serve(fd);
      close(fd);
      live_connections_.fetch_sub(1);
    }).detach();
  }
}

void DemoBackend::serve(int fd) {
  std::mt19937 rng(static_cast<unsigned>(fd) * 7919u);
  HttpMessageReader reader(HttpMessageKind::kRequest);
  std::string carry;
  while (!stopping_.load()) {
    if (carry.empty()) {  // idle: look at stop() every 200 ms
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 200) == 0) continue;
    }
    const auto request = read_http_message(fd, reader, carry, 10'000);
    if (!request.ok()) return;
    const Reply reply = route(request->method, request->target, rng);
    if (reply.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(reply.delay_ms));
    std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + reply.reason +
                      "\r\nContent-Type: " + reply.type +
                      "\r\nContent-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n" +
                      reply.body;
    if (!demo_wire::write_all(fd, out)) return;
  }
}

}  // namespace netprof
