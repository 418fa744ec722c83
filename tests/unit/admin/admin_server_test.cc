#include "admin/admin_server.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "pipeline/stats_hub.h"
#include "routes/route_namer.h"
#include "stats/asset_classifier.h"

namespace netprof {
namespace {

// A port that was free a moment ago (the admin server must be told it before it
// binds, so that a client can be knocking already).
uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len), 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

// GET `path` on 127.0.0.1:port; empty if nothing listens yet.
std::string get(uint16_t port, const std::string &path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    ::close(fd);
    return {};
  }
  const std::string request =
      "GET " + path +
      " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// The server answers from its own threads as soon as it listens, before
// AdminServer::start() has returned: a scrape at that moment used to read the
// HttpServer pointer while start() was still storing it (null: a crash;
// ThreadSanitizer reports it on any early scrape).
TEST(AdminServer, AScrapeAtStartupIsAnsweredWhileStartIsStillRunning) {
  StatsHub hub(StatsHubOptions{}, StoreLimits{}, HttpMetricsOptions{},
               std::make_shared<RouteNamer>(),
               std::make_shared<AssetClassifier>());
  const uint16_t port = free_port();
  std::atomic<bool> answered{false};
  std::string first;
  std::thread scraper([&] {
    for (int i = 0; i < 200000 && !answered.load(); ++i) {
      std::string r = get(port, "/metrics");
      if (!r.empty()) {
        first = std::move(r);
        answered.store(true);
      }
    }
  });
  SocketAddress address;
  std::string error;
  ASSERT_TRUE(parse_socket_address("127.0.0.1:" + std::to_string(port),
                                   "127.0.0.1", address, error))
      << error;
  AdminSources sources;
  sources.stats = &hub;
  auto admin = AdminServer::start(address, sources, error);
  scraper.join();
  ASSERT_TRUE(admin) << error;
  ASSERT_TRUE(answered.load());
  EXPECT_NE(first.find("HTTP/1.1 200"), std::string::npos) << first;
  EXPECT_NE(first.find("netprof_admin_connections_total"), std::string::npos)
      << first;
  admin->stop();
}

} // namespace
} // namespace netprof
