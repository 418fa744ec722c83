#include "admin/tap_hub.h"

#include <gtest/gtest.h>

namespace netprof {
namespace {

TapHub make_hub(size_t ring) {
  return TapHub(ring, false, [](MonoNanos t) { return t / 1'000'000; });
}

Exchange exchange(uint16_t status, std::string_view path) {
  Exchange e;
  e.method = 1;
  e.path = path;
  e.status = status;
  return e;
}

TEST(TapHub, NothingIsCopiedWhileNobodyListens) {
  TapHub hub = make_hub(16);
  hub.on_routed_exchange(exchange(200, "/a"), "/a");
  EXPECT_EQ(hub.stats().published, 0u);
  EXPECT_EQ(hub.ring_bytes(), 0u) << "the ring is made for the first subscriber";
  auto sub = hub.subscribe();
  EXPECT_EQ(hub.ring_bytes(), 16 * sizeof(TapRecord));
  hub.on_routed_exchange(exchange(200, "/a"), "/a");
  std::vector<TapRecord> out;
  EXPECT_EQ(sub->read(out, 100), 0u);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].route_view(), "/a");
}

TEST(TapHub, LinesCarryTheRequestIdAndTheTraceId) {
  TapHub hub = make_hub(16);
  auto sub = hub.subscribe();
  Exchange e = exchange(200, "/a");
  e.connection_id = 42;
  e.sequence = 3;
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  hub.on_routed_exchange(e, "/a");
  hub.on_routed_exchange(exchange(200, "/b"), "/b");  // no relay, no trace: neither field
  std::vector<TapRecord> out;
  sub->read(out, 2);
  ASSERT_EQ(out.size(), 2u);
  const std::string line = hub.format(out[0], false);
  EXPECT_NE(line.find("\"request_id\":\"42-3\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""), std::string::npos);
  const std::string bare = hub.format(out[1], false);
  EXPECT_EQ(bare.find("request_id"), std::string::npos);
  EXPECT_EQ(bare.find("trace_id"), std::string::npos);
}

TEST(TapHub, SlowSubscriberSkipsAheadAndIsToldHowMany) {
  TapHub hub = make_hub(16);
  auto sub = hub.subscribe();
  for (int i = 0; i < 40; ++i) hub.on_routed_exchange(exchange(200, "/p"), "/p");
  std::vector<TapRecord> out;
  EXPECT_EQ(sub->read(out, 100), 24u);
  EXPECT_EQ(out.size(), 16u);
}

TEST(TapHub, FormatKeepsQueryOutOfRawPathUnlessAsked) {
  TapHub hub = make_hub(16);
  auto sub = hub.subscribe();
  hub.on_routed_exchange(exchange(404, "/u/1?token=s"), "/u/{id}");
  std::vector<TapRecord> out;
  sub->read(out, 1);
  const std::string without = hub.format(out[0], false);
  const std::string with = hub.format(out[0], true);
  EXPECT_EQ(without.find("\"path\""), std::string::npos);
  EXPECT_NE(with.find("\"path\":\"/u/1\""), std::string::npos);
  EXPECT_EQ(with.find("token"), std::string::npos);
  EXPECT_EQ(with.back(), '\n');
}

TEST(TapHub, RawPathNeverShowsUserinfoOfAnAbsoluteFormUrl) {
  TapHub hub = make_hub(16);
  auto sub = hub.subscribe();
  hub.on_routed_exchange(exchange(200, "http://user:hunter2@example.com/a?x=1"), "/a");
  std::vector<TapRecord> out;
  sub->read(out, 1);
  const std::string line = hub.format(out[0], true);
  EXPECT_NE(line.find("\"path\":\"http://example.com/a\""), std::string::npos) << line;
  EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
}

TEST(TapFilter, StatusClassesCodesAndErrors) {
  std::vector<std::string> status;
  ASSERT_EQ(TapFilter::parse_status("404,5xx,error", status), "");
  TapFilter f;
  f.status = status;
  TapRecord r{};
  r.status = 404;
  EXPECT_TRUE(f.matches(r));
  r.status = 503;
  EXPECT_TRUE(f.matches(r));
  r.status = 200;
  EXPECT_FALSE(f.matches(r));
  r.status = 0;
  r.outcome = ExchangeOutcome::kResetBeforeResponse;
  EXPECT_TRUE(f.matches(r));
  std::vector<std::string> bad;
  EXPECT_NE(TapFilter::parse_status("7xx", bad), "");
  EXPECT_NE(TapFilter::parse_status("ok", bad), "");
}

TEST(TapFilter, RouteExactOrPrefix) {
  TapRecord r{};
  const std::string route = "/api/users/{id}";
  r.route_len = static_cast<uint16_t>(route.size());
  route.copy(r.route, route.size());
  TapFilter f;
  f.route = "/api/users/{id}";
  EXPECT_TRUE(f.matches(r));
  f.route = "/api/*";
  EXPECT_TRUE(f.matches(r));
  f.route = "/api";
  EXPECT_FALSE(f.matches(r));
}

}  // namespace
}  // namespace netprof
