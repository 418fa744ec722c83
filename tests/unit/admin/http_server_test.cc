#include "admin/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "export/http_client.h"

namespace netprof {
namespace {

std::unique_ptr<HttpServer> start(HttpHandler handler) {
  SocketAddress any;
  std::string error;
  EXPECT_TRUE(parse_socket_address("127.0.0.1:0", "127.0.0.1", any, error)) << error;
  auto server = HttpServer::start(any, std::move(handler), HttpServerOptions{}, error);
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

}  // namespace
}  // namespace netprof
