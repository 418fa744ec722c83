#include "demo/demo_traffic.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <string_view>

#include "demo/wire.h"
#include "http/message_reader.h"

namespace netprof {
namespace {

struct Call {
  const char* method;
  const char* target;
  int weight;
};

// A shop's traffic: mostly API reads, some assets, a slow search, a flaky checkout, typos.
constexpr Call kCalls[] = {
    {"GET", "/", 10},
    {"GET", "/api/users/42", 15},
    {"GET", "/api/users/7?expand=orders", 10},
    {"GET", "/api/orders?page=2", 12},
    {"POST", "/api/orders", 6},
    {"GET", "/api/search?q=shoes", 5},
    {"POST", "/api/checkout", 4},
    {"GET", "/static/app.js", 6},
    {"GET", "/static/style.css", 6},
    {"GET", "/logo.png", 5},
    {"GET", "/favicon.ico", 3},
    {"HEAD", "/healthz", 2},
};

}  // namespace

DemoTraffic::DemoTraffic(const SocketAddress& target, int clients, int requests_per_second)
    : target_(target),
      pause_us_(requests_per_second > 0 ? 1'000'000 * clients / requests_per_second : 0) {
  for (int i = 0; i < clients; ++i)
    clients_.emplace_back([this, i] { client_loop(static_cast<unsigned>(i) + 1); });
}

DemoTraffic::~DemoTraffic() { stop(); }

void DemoTraffic::stop() {
  stopping_.store(true);
  for (auto& t : clients_)
    if (t.joinable()) t.join();
}

void DemoTraffic::client_loop(unsigned seed) {
  std::mt19937 rng(seed);
  int total_weight = 0;
  for (const Call& c : kCalls) total_weight += c.weight;
  std::uniform_int_distribution<int> pick(1, total_weight);
  std::uniform_int_distribution<int> requests_per_connection(1, 30);
  while (!stopping_.load()) {
    const int fd = socket(target_.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, target_.get(), target_.length) != 0) {
      if (fd >= 0) close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    HttpMessageReader reader(HttpMessageKind::kResponse);
    std::string carry;
    for (int n = requests_per_connection(rng); n > 0 && !stopping_.load(); --n) {
      int roll = pick(rng);
      const Call* call = kCalls;
      while (roll > call->weight) roll -= (call++)->weight;
      const std::string body = std::string(call->method) == "POST" ? R"({"item":12,"qty":1})" : "";
      const std::string request = std::string(call->method) + " " + call->target +
                                  " HTTP/1.1\r\nHost: demo\r\nUser-Agent: netprof-demo\r\n" +
                                  "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      if (!demo_wire::write_all(fd, request)) break;
      if (std::string_view(call->method) == "HEAD") reader.expect_no_body();
      if (!read_http_message(fd, reader, carry, 10'000).ok()) break;
      sent_.fetch_add(1);
      if (pause_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(pause_us_));
    }
    close(fd);
  }
}

}  // namespace netprof
