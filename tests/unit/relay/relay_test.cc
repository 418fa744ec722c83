// The relay in-process, between real loopback sockets: bytes, back-pressure, listeners
// added and removed while it runs.
#include "relay/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include <future>
#include <mutex>
#include <random>
#include <thread>

namespace netprof {
namespace {

// What the relay adds to an exchange (ConnectionSink), copied.
struct RelayFacts {
  uint64_t connection_id;
  uint32_t sequence;
  PeerAddress peer;
  MonoNanos accepted, upstream_connected, request_done, request_sent, relay_held;
};

struct CountingSink : ExchangeSink {
  std::atomic<int> exchanges{0}, unparsed{0};
  std::mutex mu;
  std::vector<RelayFacts> facts;  // guarded by mu
  void on_exchange(const Exchange& e) override {
    {
      std::lock_guard lock(mu);
      facts.push_back({e.connection_id, e.sequence, e.peer, e.accepted, e.upstream_connected,
                       e.request_done, e.request_sent, e.relay_held});
    }
    exchanges++;
  }
  void on_unparsed_connection(uint32_t) override { unparsed++; }
};

SocketAddress loopback(uint16_t port = 0) {
  SocketAddress a;
  std::string error;
  EXPECT_TRUE(parse_socket_address("127.0.0.1:" + std::to_string(port), "", a, error)) << error;
  return a;
}

uint16_t port_of(int fd) {
  sockaddr_in in{};
  socklen_t len = sizeof in;
  getsockname(fd, reinterpret_cast<sockaddr*>(&in), &len);
  return ntohs(in.sin_port);
}

int connect_to(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const SocketAddress a = loopback(port);
  if (connect(fd, a.get(), a.length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A relay on its own thread in front of a listening "upstream" socket the test drives.
class RelayFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_listener_ = listen_tcp(loopback(), 16).release();
    ASSERT_GE(upstream_listener_, 0);
    fcntl(upstream_listener_, F_SETFL, 0);  // the test accepts blocking
    relay_ = std::make_unique<Relay>(options_, sink_, counters_);
    UniqueFd fd = listen_tcp(loopback(), 16);
    ASSERT_TRUE(fd.valid());
    relay_port_ = port_of(fd.get());
    ListenerSpec spec{std::move(fd), 0,
                      std::make_shared<FixedTargetDialer>(loopback(port_of(upstream_listener_)))};
    relay_listener_ = spec.id;
    relay_->add_listener(std::move(spec));
    loop_ = std::thread([this] { relay_->run(); });
  }
  void TearDown() override {
    relay_->request_stop();
    loop_.join();
    close(upstream_listener_);
  }

  RelayOptions options_;
  CountingSink sink_;
  ConnectionCounters counters_;
  std::unique_ptr<Relay> relay_;
  std::thread loop_;
  int upstream_listener_ = -1;
  ListenerId relay_listener_;
  uint16_t relay_port_ = 0;
};

TEST_F(RelayFixture, RelaysBytesBothWaysUnchanged) {
  const int client = connect_to(relay_port_);
  ASSERT_GE(client, 0);
  const int server = accept(upstream_listener_, nullptr, nullptr);
  ASSERT_GE(server, 0);
  std::mt19937 rng(1);
  std::string up(300000, '\0'), down(200000, '\0');
  for (auto& c : up) c = static_cast<char>(rng());
  for (auto& c : down) c = static_cast<char>(rng());

  auto send_all = [](int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) off += static_cast<size_t>(send(fd, s.data() + off, s.size() - off, 0));
    shutdown(fd, SHUT_WR);
  };
  auto recv_all = [](int fd) {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
    return got;
  };
  std::thread t1(send_all, client, up), t2(send_all, server, down);
  auto at_server = std::async(std::launch::async, recv_all, server);
  const std::string at_client = recv_all(client);
  t1.join();
  t2.join();
  EXPECT_EQ(at_server.get(), up);
  EXPECT_EQ(at_client, down);
  close(client);
  close(server);
}

TEST_F(RelayFixture, PausesReadingWhenThePeerDoesNotRead) {
  const int client = connect_to(relay_port_);
  const int server = accept(upstream_listener_, nullptr, nullptr);
  ASSERT_GE(server, 0);
  fcntl(client, F_SETFL, O_NONBLOCK);
  // The server never reads. The client can fill kernel buffers and one relay buffer, then
  // its writes must stop succeeding: the relay stopped reading instead of buffering more.
  std::vector<char> chunk(65536, 'x');
  size_t accepted = 0;
  for (int quiet_rounds = 0; quiet_rounds < 20;) {
    const ssize_t n = send(client, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      accepted += static_cast<size_t>(n);
      quiet_rounds = 0;
      ASSERT_LT(accepted, size_t{256} << 20) << "relay kept reading a peer that cannot write";
    } else {
      ASSERT_EQ(errno, EAGAIN);
      pollfd p{client, POLLOUT, 0};
      poll(&p, 1, 50);
      ++quiet_rounds;
    }
  }
  EXPECT_GT(accepted, options_.buffer_bytes);
  // Once the server reads, everything arrives.
  size_t drained = 0;
  char buf[65536];
  while (drained < accepted) {
    const ssize_t n = recv(server, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    drained += static_cast<size_t>(n);
  }
  EXPECT_EQ(drained, accepted);
  close(client);
  close(server);
}

// The relay registers each socket once, edge-triggered, and keeps "readable"/"writable" itself:
// a receiver that takes a few bytes at a time makes nearly every write short, and each resume
// must come from the kernel's next EPOLLOUT edge. Meanwhile the other direction streams: it
// must finish while the slow direction is still stuck, and both must arrive byte for byte.
TEST_F(RelayFixture, ATricklingReceiverNeitherStallsNorLosesBytesWhileTheOtherWayStreams) {
  const int client = connect_to(relay_port_);
  ASSERT_GE(client, 0);
  const int server = accept(upstream_listener_, nullptr, nullptr);
  ASSERT_GE(server, 0);
  const int small = 4096;
  setsockopt(server, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::mt19937 rng(2);
  std::string up(256 * 1024, '\0'), down(4 * 1024 * 1024, '\0');
  for (auto& c : up) c = static_cast<char>(rng());
  for (auto& c : down) c = static_cast<char>(rng());

  auto send_all = [](int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
  };
  std::thread client_sends(send_all, client, up);
  std::thread server_sends(send_all, server, down);

  // The whole response and its FIN reach the client while the server has read nothing.
  std::string at_client;
  char buf[65536];
  ssize_t n;
  while ((n = recv(client, buf, sizeof buf, 0)) > 0) at_client.append(buf, static_cast<size_t>(n));
  server_sends.join();
  EXPECT_EQ(at_client.size(), down.size());
  EXPECT_TRUE(at_client == down);

  // Now the server trickles the request in: 13 bytes per read.
  std::string at_server;
  while ((n = recv(server, buf, 13, 0)) > 0) at_server.append(buf, static_cast<size_t>(n));
  client_sends.join();
  EXPECT_EQ(at_server.size(), up.size());
  EXPECT_TRUE(at_server == up);
  close(client);
  close(server);
}

// Bytes and a FIN that reach the relay together raise one edge: the short read that takes the
// bytes must not be taken for "nothing more to read", or the FIN is never forwarded.
TEST_F(RelayFixture, AFinArrivingWithTheLastBytesIsForwarded) {
  const int client = connect_to(relay_port_);
  ASSERT_GE(client, 0);
  const int server = accept(upstream_listener_, nullptr, nullptr);
  ASSERT_GE(server, 0);
  char buf[16];
  ASSERT_EQ(send(client, "ping", 4, 0), 4);
  ASSERT_EQ(recv(server, buf, 4, MSG_WAITALL), 4);  // connected and registered both ways

  // Hold the loop thread while the client sends its last bytes and its FIN.
  std::promise<void> sent;
  std::promise<void> holding;
  relay_->post([&] {
    holding.set_value();
    sent.get_future().wait();
  });
  holding.get_future().wait();
  ASSERT_EQ(send(client, "last", 4, 0), 4);
  shutdown(client, SHUT_WR);
  sent.set_value();

  std::string got;
  for (;;) {
    pollfd p{server, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 10000), 1) << "no FIN after " << got.size() << " bytes";
    const ssize_t n = recv(server, buf, sizeof buf, 0);
    ASSERT_GE(n, 0);
    if (n == 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, "last");
  close(client);
  close(server);
}

TEST_F(RelayFixture, RemovedListenerRefusesNewConnectionsButKeepsOpenOnes) {
  const int client = connect_to(relay_port_);
  const int server = accept(upstream_listener_, nullptr, nullptr);
  ASSERT_GE(server, 0);
  std::promise<bool> removed;
  relay_->post([&] { removed.set_value(relay_->remove_listener(relay_listener_)); });
  ASSERT_TRUE(removed.get_future().get());
  EXPECT_EQ(connect_to(relay_port_), -1);

  ASSERT_EQ(send(client, "ping", 4, 0), 4);
  char buf[4];
  ASSERT_EQ(recv(server, buf, 4, MSG_WAITALL), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  close(client);
  close(server);
}

TEST_F(RelayFixture, CountsAcceptedAndActiveConnections) {
  const int client = connect_to(relay_port_);
  const int server = accept(upstream_listener_, nullptr, nullptr);
  ASSERT_GE(server, 0);
  // The upstream handshake can complete before the relay thread updates its counters.
  auto settle = [](const std::atomic<uint64_t>& counter, uint64_t want) {
    for (int i = 0; i < 500 && counter.load() != want; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return counter.load();
  };
  EXPECT_EQ(settle(counters_.accepted, 1), 1u);
  EXPECT_EQ(settle(counters_.active, 1), 1u);
  close(client);
  char buf[1];
  EXPECT_EQ(recv(server, buf, 1, 0), 0);  // FIN forwarded
  close(server);
  EXPECT_EQ(settle(counters_.active, 0), 0u);
}

// The loop meter (relay/loop_meter.h) on a real relay: each exchange records its added time,
// each turn its length; a stalled scope shows as long turns charged to that scope.
class MeteredRelay : public RelayFixture {
 protected:
  void SetUp() override {
    options_.meter = &meter_;
    RelayFixture::SetUp();
  }
  // One request and its response through the relay, on a new connection.
  void exchange() {
    const int client = connect_to(relay_port_);
    ASSERT_GE(client, 0);
    const int server = accept(upstream_listener_, nullptr, nullptr);
    ASSERT_GE(server, 0);
    const std::string request = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ASSERT_EQ(send(client, request.data(), request.size(), 0), ssize_t(request.size()));
    std::string got(request.size(), '\0');
    ASSERT_EQ(recv(server, got.data(), got.size(), MSG_WAITALL), ssize_t(got.size()));
    EXPECT_EQ(got, request);
    ASSERT_EQ(send(server, response.data(), response.size(), 0), ssize_t(response.size()));
    got.assign(response.size(), '\0');
    ASSERT_EQ(recv(client, got.data(), got.size(), MSG_WAITALL), ssize_t(got.size()));
    EXPECT_EQ(got, response);
    close(client);
    close(server);
  }
  static MonoNanos now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return MonoNanos{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }
  LoopMeter meter_;
};

TEST_F(MeteredRelay, RecordsAddedTimePerExchangeAndEveryTurn) {
  exchange();
  for (int i = 0; i < 500 && sink_.exchanges.load() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(sink_.exchanges.load(), 1);
  EXPECT_EQ(meter_.added().count, 1u);
  EXPECT_GT(meter_.added().sum_s, 0);
  EXPECT_GT(meter_.lag().count, 0u);
  EXPECT_EQ(meter_.lag().count, meter_.turns());
}

TEST_F(MeteredRelay, AStalledScopeShowsAsLagChargedToIt) {
  relay_->stall_for_tests(30'000'000, 5'000'000'000, /*scope=*/0);
  exchange();
  // Stalled turns are at least 30 ms: the histogram has them at 0.05 s or above.
  const LoopMeter::Histogram lag = meter_.lag();
  uint64_t long_turns = 0;
  for (size_t i = 0; i < LoopMeter::kBuckets.size() + 1; ++i)
    if (i >= LoopMeter::kBuckets.size() || LoopMeter::kBuckets[i] > 0.025)
      long_turns += lag.counts[i];
  EXPECT_GT(long_turns, 0u);
  // The window (published at most every 50 ms, idle turns included) charges them to scope 0.
  MonoNanos busy = 0, lag_max = 0;
  for (int i = 0; i < 200 && busy == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    LoopMeter::Window w = meter_.take_window(now());
    busy += w.busy_ns[0];
    lag_max = std::max(lag_max, w.lag_max_ns);
  }
  EXPECT_GE(busy, 30'000'000);
  EXPECT_GE(lag_max, 30'000'000);
  relay_->stall_for_tests(0, 0, 0);  // ends it
}

}  // namespace
}  // namespace netprof

namespace netprof {
namespace {

// Each exchange says which connection it came on (ids unique, from first_connection_id in
// steps), which request of it it was, who the client was, and when the relay accepted and
// connected (the connect only on a connection's first exchange).
TEST_F(RelayFixture, ExchangesCarryTheRequestIdPeerAndRelayTimes) {
  auto exchange_on = [](int client, int server) {
    const std::string_view req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string_view resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    ASSERT_EQ(send(client, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
    char buf[256];
    size_t got = 0;
    while (got < req.size()) {
      const ssize_t n = recv(server, buf, sizeof buf, 0);
      ASSERT_GT(n, 0);
      got += static_cast<size_t>(n);
    }
    ASSERT_EQ(send(server, resp.data(), resp.size(), 0), static_cast<ssize_t>(resp.size()));
    got = 0;
    while (got < resp.size()) {
      const ssize_t n = recv(client, buf, sizeof buf, 0);
      ASSERT_GT(n, 0);
      got += static_cast<size_t>(n);
    }
  };
  const int c1 = connect_to(relay_port_);
  const int s1 = accept(upstream_listener_, nullptr, nullptr);
  ASSERT_GE(s1, 0);
  exchange_on(c1, s1);
  exchange_on(c1, s1);
  const int c2 = connect_to(relay_port_);
  const int s2 = accept(upstream_listener_, nullptr, nullptr);
  ASSERT_GE(s2, 0);
  exchange_on(c2, s2);
  for (int i = 0; i < 200 && sink_.exchanges.load() < 3; ++i) usleep(10'000);
  ASSERT_EQ(sink_.exchanges.load(), 3);
  std::lock_guard lock(sink_.mu);
  const auto& f = sink_.facts;
  EXPECT_EQ(f[0].connection_id, 1u);
  EXPECT_EQ(f[1].connection_id, 1u);
  EXPECT_EQ(f[2].connection_id, 2u);
  EXPECT_EQ(f[0].sequence, 1u);
  EXPECT_EQ(f[1].sequence, 2u);
  EXPECT_EQ(f[2].sequence, 1u);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  getsockname(c1, reinterpret_cast<sockaddr*>(&local), &len);
  EXPECT_EQ(f[0].peer.family, AF_INET);
  EXPECT_EQ(f[0].peer.port, ntohs(local.sin_port));
  EXPECT_EQ(f[0].peer.bytes[0], 127);
  EXPECT_GT(f[0].accepted, 0);
  EXPECT_GE(f[0].upstream_connected, f[0].accepted);
  EXPECT_EQ(f[1].upstream_connected, 0) << "connected only on the connection's first exchange";
  EXPECT_EQ(f[1].accepted, f[0].accepted);
  // A connection's first request may have waited for the upstream connect (then it was sent
  // when that ended); a later one on a connected, idle connection goes up with its read.
  for (const RelayFacts& x : f) {
    EXPECT_GE(x.request_sent, x.request_done);
    EXPECT_GE(x.relay_held, 0);
  }
  EXPECT_EQ(f[1].request_sent, f[1].request_done);
  for (int fd : {c1, s1, c2, s2}) close(fd);
}

}  // namespace
}  // namespace netprof
