#include "admin/http_server.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "export/http_client.h"

namespace netprof {
namespace {

std::unique_ptr<HttpServer> start(HttpHandler handler, HttpServerOptions options = {}) {
  SocketAddress any;
  std::string error;
  EXPECT_TRUE(parse_socket_address("127.0.0.1:0", "127.0.0.1", any, error)) << error;
  auto server = HttpServer::start(any, std::move(handler), std::move(options), error);
  EXPECT_TRUE(server) << error;
  return server;
}

Url url_of(const HttpServer& server, const std::string& path) {
  Url u;
  std::string error;
  Url::parse(server.address().to_string() + path, u, error);
  return u;
}

TEST(HttpServer, ServesHandlerAnswersWithDecodedQuery) {
  auto server = start([](const HttpRequest& r) {
    return HttpResponse::text(r.path == "/echo" ? 200 : 404, std::string(r.param("q")) + "\n");
  });
  const HttpResult ok = http_request(url_of(*server, "/echo?q=a%20b%2Fc"), "GET");
  EXPECT_EQ(ok.status, 200) << ok.error;
  EXPECT_EQ(ok.body, "a b/c\n");
  EXPECT_EQ(http_request(url_of(*server, "/nope"), "GET").status, 404);
}

TEST(HttpServer, RefusesBodiesAndOtherMethods) {
  auto server = start([](const HttpRequest&) { return HttpResponse::text(200, "x"); });
  EXPECT_EQ(http_request(url_of(*server, "/"), "POST", "data").status, 413);
  EXPECT_EQ(http_request(url_of(*server, "/"), "DELETE").status, 405);
}

TEST(HttpServer, StopEndsAStreamThatNeverFinishes) {
  auto server = start([](const HttpRequest&) {
    HttpResponse r;
    r.stream = [](StreamWriter& out) {
      out.write("first\n");
      while (out.open()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    };
    return r;
  });
  std::string received;
  std::atomic<bool> got_first{false};
  int status = 0;
  std::thread client([&] {
    http_stream(url_of(*server, "/"), 3000, status, [&](std::string_view d) {
      received.append(d);
      got_first = true;
      return true;
    });
  });
  while (!got_first) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  server->stop();  // must return: the stream sees open() == false
  client.join();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(received, "first\n");
}

// A raw client: connects, sends `data`, and returns everything read until the server closes
// (or `timeout_ms` passes: then "<timeout>" is appended).
int connect_to(const HttpServer& server) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, server.address().get(), server.address().length) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string read_until_closed(int fd, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) out += "<timeout>";
    return out;
  }
}

std::string round_trip(const HttpServer& server, std::string_view request, int timeout_ms = 5000) {
  const int fd = connect_to(server);
  EXPECT_GE(fd, 0);
  if (fd < 0) return {};
  (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out = read_until_closed(fd, timeout_ms);
  ::close(fd);
  return out;
}

size_t count_of(std::string_view text, std::string_view what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

HttpServerOptions quick_options() {
  HttpServerOptions o;
  o.request_timeout_ms = 1000;
  o.idle_timeout_ms = 1000;
  return o;
}

// The admin API used to ignore Transfer-Encoding on requests it refused: the chunked body was
// then read as the next request. Now any body means 413 and the connection is closed.
TEST(HttpServer, ABodyIsNeverReadAsTheNextRequest) {
  std::atomic<int> calls{0};
  auto server = start([&](const HttpRequest&) {
    ++calls;
    return HttpResponse::text(200, "x");
  });
  const std::string chunked =
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const std::string out = round_trip(*server, chunked);
  EXPECT_EQ(count_of(out, "HTTP/1.1 "), 1u) << out;
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out;
  EXPECT_EQ(out.find("<timeout>"), std::string::npos) << "the connection is closed";
  const std::string with_length =
      "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 40\r\n\r\n"
      "GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const std::string out2 = round_trip(*server, with_length);
  EXPECT_EQ(count_of(out2, "HTTP/1.1 "), 1u) << out2;
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  auto server = start([](const HttpRequest& r) { return HttpResponse::text(200, r.path); });
  const std::string out = round_trip(
      *server,
      "GET /a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /b HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Connection: close\r\n\r\n");
  EXPECT_EQ(count_of(out, "HTTP/1.1 200"), 2u) << out;
  EXPECT_LT(out.find("\r\n\r\n/a"), out.find("\r\n\r\n/b")) << out;
}

TEST(HostAllowed, LoopbackNamesIpLiteralsAndConfiguredNamesOnly) {
  const std::vector<std::string> allowed = {"netprof.monitoring.svc"};
  for (const char* ok : {"localhost", "LOCALHOST:9464", "localhost.", "127.0.0.1", "127.0.0.1:80",
                         "10.1.2.3:9464", "[::1]", "[::1]:9464", "[fe80::1]:1",
                         "netprof.monitoring.svc", "NETPROF.monitoring.svc:9464"}) {
    EXPECT_TRUE(host_allowed(ok, allowed)) << ok;
  }
  for (const char* bad : {"", "evil.example.com", "evil.example.com:9464", "localhost.evil.com",
                          "127.0.0.1.evil.com", "::1", "[::1", "[::1]x", "localhost:http",
                          "[not-ip]:1", "1.2.3.4:5:6", "[fe80::1%25eth0]:80"}) {
    EXPECT_FALSE(host_allowed(bad, allowed)) << bad;
  }
  // Found by fuzz/admin_request_fuzz: a NUL ended the text inet_pton saw.
  EXPECT_FALSE(host_allowed(std::string_view("[fe80::\0evil]:80", 17), allowed));
  EXPECT_FALSE(host_allowed(std::string_view("127.0.0.1\0.evil.com", 20), allowed));
  // Also found by it: a trailing bare CR was trimmed as if it were whitespace.
  EXPECT_FALSE(host_allowed("localhost\r", allowed));
  EXPECT_FALSE(host_allowed("127.0.0.1\r\r", allowed));
  EXPECT_TRUE(host_allowed(" \tlocalhost:9464 \t", allowed));
}

// DNS rebinding: a page on evil.example reaches 127.0.0.1 with Host: evil.example.
TEST(HttpServer, RefusesForeignHostNames) {
  std::atomic<int> calls{0};
  HttpServerOptions options;
  options.allowed_hosts = {"netprof.local"};
  auto server = start(
      [&](const HttpRequest&) {
        ++calls;
        return HttpResponse::text(200, "x");
      },
      options);
  EXPECT_EQ(round_trip(*server, "GET /stats HTTP/1.1\r\nHost: evil.example:9464\r\n\r\n").rfind(
                "HTTP/1.1 403", 0),
            0u);
  EXPECT_EQ(round_trip(*server, "GET /stats HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 403", 0), 0u);
  EXPECT_EQ(calls.load(), 0);
  for (const char* host : {"localhost:1", "127.0.0.1", "netprof.local"}) {
    const std::string out = round_trip(
        *server, std::string("GET / HTTP/1.1\r\nConnection: close\r\nHost: ") + host + "\r\n\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << host << ": " << out;
  }
  EXPECT_EQ(round_trip(*server, "GET / HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(server->stats().bad_host, 2u);
}

// Slow clients used to hold every slot (a timeout restarted by each byte); /healthz must
// still answer while 128 of them trickle bytes.
TEST(HttpServer, HealthzAnswersWhile128SlowClientsHoldThePort) {
  auto server = start([](const HttpRequest& r) { return HttpResponse::text(200, r.path); },
                      quick_options());
  std::vector<int> slow;
  for (int i = 0; i < 128; ++i) {
    const int fd = connect_to(*server);
    ASSERT_GE(fd, 0);
    (void)!::send(fd, "GET /stats HTTP/1.1\r\n", 21, MSG_NOSIGNAL);
    slow.push_back(fd);
  }
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    while (!done) {
      for (int fd : slow) (void)!::send(fd, "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  for (int i = 0; i < 5; ++i) {
    const HttpResult r = http_request(url_of(*server, "/healthz"), "GET", {}, {}, 5000);
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.body, "/healthz");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  done = true;
  trickle.join();
  for (int fd : slow) ::close(fd);
  const HttpServerStats stats = server->stats();
  EXPECT_GT(stats.evicted + stats.timed_out, 0u) << "the slow clients lost their places";
}

// Dashboards poll /stats; a browser revalidates with If-None-Match and must then get 304 and
// no body (the 5 MB document of 10,000 routes is sent once per render, not once per poll).
TEST(HttpServer, AMatchingIfNoneMatchIsAnswered304WithoutTheBody) {
  auto server = start([](const HttpRequest& r) {
    HttpResponse res = HttpResponse::text(200, "the document\n");
    if (r.path == "/tagged") res.etag = "\"abc-1\"";
    return res;
  });
  const std::string first =
      round_trip(*server, "GET /tagged HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(first.rfind("HTTP/1.1 200", 0), 0u) << first;
  EXPECT_NE(first.find("\r\nETag: \"abc-1\"\r\n"), std::string::npos) << first;
  EXPECT_NE(first.find("Cache-Control: no-cache"), std::string::npos) << first;
  for (const char* tag : {"\"abc-1\"", "W/\"abc-1\"", "\"x\", \"abc-1\"", "*"}) {
    const std::string again = round_trip(
        *server, std::string("GET /tagged HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                             "If-None-Match: ") + tag + "\r\n\r\n");
    EXPECT_EQ(again.rfind("HTTP/1.1 304 Not Modified", 0), 0u) << tag << ": " << again;
    EXPECT_EQ(again.find("the document"), std::string::npos) << tag << ": no body";
  }
  const std::string stale = round_trip(
      *server, "GET /tagged HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
               "If-None-Match: \"abc-0\"\r\n\r\n");
  EXPECT_EQ(stale.rfind("HTTP/1.1 200", 0), 0u) << stale;
  EXPECT_NE(stale.find("the document"), std::string::npos);
  const std::string untagged = round_trip(
      *server, "GET /plain HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
               "If-None-Match: *\r\n\r\n");
  EXPECT_EQ(untagged.rfind("HTTP/1.1 200", 0), 0u) << "no tag, nothing to match: " << untagged;
  EXPECT_NE(untagged.find("Cache-Control: no-store"), std::string::npos);
  EXPECT_EQ(server->stats().not_modified, 4u);
}

// A loopback socket listening before any server runs: connections made to it wait in its
// backlog, so a test decides what the server finds at its first accept (HttpServer::start_on
// takes the fd over).
struct QueuedListener {
  QueuedListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, 256) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      fd = -1;
  }
  int connect() const {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(c, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    return c;
  }
  int fd = -1;
  sockaddr_in addr{};
};

// Found by bench/attack: after the poll thread was held up, the backlog held more new
// connections of 127.0.0.1 than max_per_client; the probe, accepted first, was evicted as
// "the oldest waiting" before its request (already there) was read.
TEST(HttpServer, AProbeQueuedBehindABurstIsAnsweredNotEvicted) {
  QueuedListener queue;
  ASSERT_GE(queue.fd, 0);
  const int listener = queue.fd;
  auto connect_queued = [&] { return queue.connect(); };
  const int probe = connect_queued();
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(probe, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  HttpServerOptions options = quick_options();
  std::vector<int> burst;  // silent, more than one client may keep
  for (size_t i = 0; i < options.max_per_client + 8; ++i) burst.push_back(connect_queued());

  std::string error;
  auto server = HttpServer::start_on(
      UniqueFd(listener), [](const HttpRequest& r) { return HttpResponse::text(200, r.path); }, options,
      error);
  ASSERT_TRUE(server) << error;
  const std::string out = read_until_closed(probe, 5000);
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  EXPECT_NE(out.find("/healthz"), std::string::npos) << out;
  // The poll thread may still be accepting the burst while the probe's answer is read.
  for (int i = 0; i < 500 && server->stats().accepted < burst.size() + 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(server->stats().evicted, 0u) << "the burst was over the per-client limit";
  ::close(probe);
  for (int fd : burst) ::close(fd);
}

// Found by torture.siege in CI: a probe connected, then 128 slow clients of the same address
// each sent part of a request head; the probe, oldest of those waiting and not yet heard
// from, was evicted to make room for them. Slow clients make room among themselves.
TEST(HttpServer, SlowClientsEvictEachOtherNotAProbeAboutToSpeak) {
  QueuedListener queue;
  ASSERT_GE(queue.fd, 0);
  const int listener = queue.fd;
  auto connect_queued = [&] { return queue.connect(); };
  const int probe = connect_queued();  // says nothing yet
  HttpServerOptions options = quick_options();
  std::vector<int> slow;
  for (size_t i = 0; i < options.max_per_client + 8; ++i) {
    slow.push_back(connect_queued());
    (void)!::send(slow.back(), "GET /stats HTTP/1.1\r\n", 21, MSG_NOSIGNAL);
  }
  std::string error;
  auto server = HttpServer::start_on(
      UniqueFd(listener), [](const HttpRequest& r) { return HttpResponse::text(200, r.path); }, options,
      error);
  ASSERT_TRUE(server) << error;
  for (int i = 0; i < 500 && server->stats().accepted < slow.size() + 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(server->stats().evicted, 0u) << "the slow ones were over the per-client limit";
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(probe, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  const std::string out = read_until_closed(probe, 5000);
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  ::close(probe);
  for (int fd : slow) ::close(fd);
}

TEST(HttpServer, WholeRequestDeadlineIsNotRestartedByEachByte) {
  auto server = start([](const HttpRequest&) { return HttpResponse::text(200, "x"); },
                      quick_options());  // 1 s for a whole request head
  const int fd = connect_to(*server);
  ASSERT_GE(fd, 0);
  bool closed = ::send(fd, "GET /", 5, MSG_NOSIGNAL) < 0;
  for (int i = 0; i < 100 && !closed; ++i) {  // a byte of the path every 100 ms, for up to 10 s
    closed = ::send(fd, "a", 1, MSG_NOSIGNAL) < 0;
    char c;
    closed = closed || ::recv(fd, &c, 1, MSG_DONTWAIT) == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::close(fd);
  EXPECT_TRUE(closed) << "a client trickling bytes was never cut off";
  EXPECT_EQ(server->stats().timed_out, 1u);
}

TEST(HttpServer, PriorityPathsHaveHandlersKeptForThem) {
  HttpServerOptions options;
  options.max_handlers = 3;
  options.reserved_handlers = 1;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> blocked{0};
  auto server = start(
      [&](const HttpRequest& r) {
        if (r.path == "/slow") {
          ++blocked;
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return release; });
        }
        return HttpResponse::text(200, "x");
      },
      options);
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i)
    clients.emplace_back([&] { http_request(url_of(*server, "/slow"), "GET", {}, {}, 10000); });
  while (blocked < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // A handler frees its slot just after its client has the answer, so a request right behind
  // another may find the reserved slot still taken: priority paths get one soon, never
  // /stats while both others are blocked.
  auto soon = [&](const char* path) {
    int status = 0;
    for (int i = 0; i < 200 && status != 200; ++i) {
      status = http_request(url_of(*server, path), "GET").status;
      if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status;
  };
  EXPECT_EQ(http_request(url_of(*server, "/stats"), "GET").status, 503);
  EXPECT_EQ(soon("/healthz"), 200);
  EXPECT_EQ(soon("/metrics"), 200);
  EXPECT_EQ(http_request(url_of(*server, "/stats"), "GET").status, 503) << "still reserved";
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& c : clients) c.join();
  EXPECT_EQ(soon("/stats"), 200);
}

#if defined(__SANITIZE_ADDRESS__)
#define NETPROF_SANITIZED 1
#endif

// At the fd limit the old accept loop spun at 100% CPU. Now each waiting connection is
// accepted with the spare fd and closed (the client sees a close, not a hang), and the poll
// thread sleeps between events: few wake-ups, however long the exhaustion lasts.
TEST(HttpServer, FdExhaustionShedsConnectionsWithoutSpinning) {
#ifdef NETPROF_SANITIZED
  GTEST_SKIP() << "sanitizer runtimes need free fds of their own (see tests/torture)";
#endif
  auto server = start([](const HttpRequest&) { return HttpResponse::text(200, "ok"); });
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int highest = 0;
  for (int fd = 0; fd < 4096; ++fd)
    if (fcntl(fd, F_GETFD) >= 0) highest = fd;
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(highest + 32);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> fillers;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
  ASSERT_EQ(errno, EMFILE);

  const uint64_t wakeups_before = server->stats().loop_wakeups;
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    ::close(fillers.back());  // one fd for the client; the server has none left
    fillers.pop_back();
    const int fd = connect_to(*server);
    ASSERT_GE(fd, 0);
    seen.push_back(read_until_closed(fd, 5000));
    ::close(fd);
    const int again = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (again >= 0) fillers.push_back(again);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const HttpServerStats stats = server->stats();
  for (int fd : fillers) ::close(fd);
  setrlimit(RLIMIT_NOFILE, &saved);

  for (const std::string& s : seen) EXPECT_EQ(s.find("<timeout>"), std::string::npos) << s;
  EXPECT_GE(stats.fd_exhausted, 1u);
  EXPECT_LT(stats.loop_wakeups - wakeups_before, 200u) << "the poll thread is spinning";
  EXPECT_EQ(http_request(url_of(*server, "/healthz"), "GET").status, 200) << "serves again";
}

}  // namespace
}  // namespace netprof
