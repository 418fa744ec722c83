// The tracker's memory promises: nothing allocated per request once a connection is warm, and
// little held by an idle connection, counted by the replaced operator new (counting_new.cc).
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "counting_new.h"
#include "http/tracker.h"


namespace netprof {
namespace {

using testing::g_allocations;
using testing::g_live_bytes;

class CountingSink final : public ExchangeSink {
 public:
  void on_exchange(const Exchange& e) override {
    ++exchanges;
    path_bytes += e.path.size();
  }
  void on_unparsed_connection(uint32_t) override { ++unparsed; }
  size_t exchanges = 0, path_bytes = 0;
  int unparsed = 0;
};

const std::string kLongPath = "/api/v2/customers/8d9f0a7e-1b2c-4d5e-8f90-a1b2c3d4e5f6/orders?page=2&size=50";
const std::string kRequest = "GET " + kLongPath + " HTTP/1.1\r\nHost: svc\r\nAccept: */*\r\n\r\n";
const std::string kResponse = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n";

const std::string kTwoRequests = kRequest + kRequest;  // pipelined

void exchange_pair(HttpTracker& t, MonoNanos now) {
  t.on_client_bytes(kTwoRequests, now);
  t.on_server_bytes(kResponse, now + 1);
  t.on_server_bytes(kResponse, now + 2);
}

TEST(HttpTrackerMemory, NoAllocationPerRequestOnceWarm) {
  CountingSink sink;
  HttpTracker tracker(sink, 1);
  for (int i = 0; i < 10; ++i) exchange_pair(tracker, i * 10);
  const long before = g_allocations.load();
  for (int i = 10; i < 1010; ++i) exchange_pair(tracker, i * 10);
  const long during = g_allocations.load() - before;
  EXPECT_EQ(sink.exchanges, 2020u);
  EXPECT_EQ(sink.path_bytes, 2020u * kLongPath.size());
  EXPECT_EQ(during, 0) << "allocations while following 2000 requests";
}

TEST(HttpTrackerMemory, IdleConnectionHoldsLittle) {
  const long before = g_live_bytes.load();
  CountingSink sink;
  auto tracker = std::make_unique<HttpTracker>(sink, 1);
  for (int i = 0; i < 10; ++i) exchange_pair(*tracker, i * 10);
  const long held = g_live_bytes.load() - before;
  EXPECT_EQ(sink.exchanges, 20u);
  EXPECT_EQ(tracker->pending_requests(), 0u);
  // The relay's budget for a whole idle connection is 8 KiB; the tracker takes a small part.
  EXPECT_LT(held, 2048) << "bytes held by an idle tracker";
  std::printf("idle tracker holds %ld bytes\n", held);
  tracker.reset();
  EXPECT_EQ(g_live_bytes.load(), before);
}

TEST(HttpTrackerMemory, RefusedUpgradeReleasesItsHoldBuffer) {
  const long before = g_live_bytes.load();
  CountingSink sink;
  auto tracker = std::make_unique<HttpTracker>(sink, 1);
  const std::string upgrade = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  tracker->on_client_bytes(upgrade, 1);
  tracker->on_client_bytes(std::string(4000, 'x').insert(0, kRequest), 2);  // held
  const long holding = g_live_bytes.load() - before;
  tracker->on_server_bytes(std::string("HTTP/1.1 426 No\r\nContent-Length: 0\r\n\r\n"), 3);
  const long after = g_live_bytes.load() - before;
  EXPECT_GT(holding, 4000);
  EXPECT_LT(after, 2048);
  // The upgrade exchange, then the replayed request: parsed, but the 4000 'x' behind it are not
  // HTTP, so it is reported as not followed.
  EXPECT_EQ(sink.exchanges, 2u);
  EXPECT_EQ(sink.unparsed, 1);
  EXPECT_EQ(tracker->mode(), TrackerMode::kUnparsed);
}

}  // namespace
}  // namespace netprof
