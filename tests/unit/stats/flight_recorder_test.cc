// The flight recorder on literal exchanges: which are kept (the N slowest, the N most recent
// failures), that keeping them costs no allocation once a route's lists exist, how windows
// roll in the aggregator's log, and what a merged store's snapshot and the JSON show.
#include "stats/flight_recorder.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <vector>

#include "allocation_counter.h"
#include "exchange_builder.h"
#include "report/flight_json.h"
#include "stats/route_store.h"

namespace netprof {
namespace {

using testing::allocations;
using testing::completed;
using testing::failed;

FlightOptions options(size_t n, bool raw_path = false, bool keep_query = false) {
  FlightOptions o;
  o.per_route = n;
  o.raw_path = raw_path;
  o.keep_query = keep_query;
  return o;
}

// A completed exchange taking `ms` to its last byte, started at `t0`.
Exchange taking(double ms, uint16_t status = 200, MonoNanos t0 = 1'000'000'000) {
  return completed("/api/search?q=shoes", status, ms * 500, ms * 1000, t0);
}

std::vector<MonoNanos> durations(const std::vector<FlightRecord>& records) {
  std::vector<MonoNanos> out;
  for (const auto& r : records) out.push_back(r.duration);
  std::sort(out.rbegin(), out.rend());
  return out;
}

TEST(FlightCandidates, KeepsTheNSlowestAndNothingFaster) {
  FlightCandidates c;
  const FlightOptions o = options(3);
  for (double ms : {5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0}) c.offer(taking(ms), 0, o);
  EXPECT_EQ(durations(c.slow()), (std::vector<MonoNanos>{9'000'000, 8'000'000, 7'000'000}));
  EXPECT_TRUE(c.failures().empty());
  c.clear();
  EXPECT_TRUE(c.empty());
  c.offer(taking(1), 0, o);  // a new hand-over starts with an empty list
  EXPECT_EQ(c.slow().size(), 1u);
}

TEST(FlightCandidates, AnUnansweredRequestShowsHowLongItWaitedNotZero) {
  FlightCandidates c;
  const FlightOptions o = options(2);
  Exchange never = failed("/api/search", ExchangeOutcome::kClosedBeforeResponse, 1'000'000'000);
  never.request_done = never.request_sent = 1'000'000'000;
  never.ended = MonoNanos{3'000'000'000};  // the client gave up after 2 s
  c.offer(never, 0, o);
  EXPECT_TRUE(c.slow().empty()) << "no response: not ranked among the slowest";
  ASSERT_EQ(c.failures().size(), 1u);
  EXPECT_EQ(c.failures()[0].duration, 2'000'000'000);
  const nlohmann::json j = flight_record_json(c.failures()[0]);
  EXPECT_EQ(j["duration_ms"], 2000.0);
  EXPECT_EQ(j["timing_ms"]["ended"], 2000.0);
  EXPECT_FALSE(j["timing_ms"].contains("last_byte"));
  EXPECT_FALSE(j["timing_ms"].contains("response_head"));
  // A completed exchange's last step keeps its name.
  c.offer(taking(3), 0, o);
  EXPECT_TRUE(flight_record_json(c.slow().at(0))["timing_ms"].contains("last_byte"));
}

TEST(FlightCandidates, FailuresAreKeptNewestWhateverTheirDuration) {
  FlightCandidates c;
  const FlightOptions o = options(2);
  c.offer(taking(50), 0, o);
  c.offer(taking(1, 503, 2'000'000'000), 0, o);
  c.offer(failed("/api/search", ExchangeOutcome::kResetBeforeResponse, 3'000'000'000), 0, o);
  Exchange grpc = taking(1, 200, 4'000'000'000);
  grpc.grpc = true;
  grpc.grpc_status = 14;
  c.offer(grpc, 0, o);
  c.offer(taking(1, 404, 5'000'000'000), 0, o);  // a 404 is no failure
  ASSERT_EQ(c.failures().size(), 2u);
  std::vector<MonoNanos> starts;
  for (const auto& r : c.failures()) starts.push_back(r.first_byte);
  std::sort(starts.begin(), starts.end());
  EXPECT_EQ(starts, (std::vector<MonoNanos>{3'000'000'000, 4'000'000'000 - 1000}));
  EXPECT_EQ(c.slow().front().duration, 50'000'000);
  // A reset never got a response: no duration, so it is not among the slowest.
  for (const auto& r : c.slow()) EXPECT_NE(r.outcome, ExchangeOutcome::kResetBeforeResponse);
}

TEST(FlightCandidates, KeepingCostsNoAllocationOnceTheListsExist) {
  static_assert(sizeof(FlightRecord) <= 128, "a record is the recorder's unit of memory");
  FlightCandidates c;
  const FlightOptions o = options(5);
  for (int i = 0; i < 20; ++i) c.offer(taking(1 + i), 0, o);
  for (int i = 0; i < 5; ++i) c.offer(taking(1, 500), 0, o);  // both lists reach their size
  c.clear();
  const uint64_t before = allocations();
  for (int i = 0; i < 1000; ++i) {
    c.offer(taking(1 + i % 50), 0, o);  // slower ones keep replacing the fastest kept
    if (i % 10 == 0) c.offer(taking(1, 502), 0, o);
  }
  EXPECT_EQ(allocations() - before, 0u);
  EXPECT_EQ(c.slow().size(), 5u);
}

TEST(FlightCandidates, AFloorSkipsWhatTheWindowAlreadyBeatsUntilTheWindowEnds) {
  FlightCandidates c;
  const FlightOptions o = options(3);
  c.set_floor(5'000'000, 2'000'000'000);  // 5 ms, until t = 2 s
  c.offer(taking(4, 200, 1'000'000'000), 0, o);
  c.offer(taking(5, 200, 1'000'000'000), 0, o);
  EXPECT_TRUE(c.empty()) << "no faster than the floor: the window would not take them";
  c.offer(taking(6, 200, 1'000'000'000), 0, o);
  EXPECT_EQ(durations(c.slow()), (std::vector<MonoNanos>{6'000'000}));
  c.offer(taking(1, 503, 1'000'000'000), 0, o);
  EXPECT_EQ(c.failures().size(), 1u) << "failures are kept whatever the floor";
  c.clear();
  c.offer(taking(4, 200, 1'500'000'000), 0, o);
  EXPECT_TRUE(c.slow().empty()) << "clear() keeps the floor";
  c.offer(taking(4, 200, 1'999'000'000), 0, o);
  EXPECT_EQ(c.slow().size(), 1u) << "it ends in the next window, whose list starts over";
}

TEST(FlightCandidates, CopiesTheRelaysFactsAndThePathOnlyWhenAsked) {
  Exchange e = taking(3);
  e.connection_id = 42;
  e.sequence = 1;
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  e.accepted = e.request_first_byte - 2'000'000;
  e.upstream_connected = e.request_first_byte - 1'000'000;
  e.request_sent = e.request_done;
  e.relay_held = 250'000;
  e.peer.family = AF_INET;
  e.peer.port = 40000;
  e.peer.bytes[0] = 10;
  e.peer.bytes[3] = 7;
  FlightCandidates off, raw, query;
  off.offer(e, 1700000000000, options(1));
  raw.offer(e, 1700000000000, options(1, true));
  query.offer(e, 1700000000000, options(1, true, true));
  const FlightRecord& r = off.slow().at(0);
  EXPECT_EQ(r.connection_id, 42u);
  EXPECT_EQ(r.trace_view(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(r.has_path);
  EXPECT_EQ(r.path_view(), "");
  EXPECT_EQ(raw.slow().at(0).path_view(), "/api/search");
  EXPECT_EQ(raw.slow().at(0).trace_view(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(query.slow().at(0).path_view(), "/api/search?q=shoes");
  // Neither a trace id nor a path: no text is allocated.
  Exchange plain = e;
  plain.trace_id = {};
  FlightCandidates untraced;
  untraced.offer(plain, 1700000000000, options(1));
  EXPECT_FALSE(untraced.slow().at(0).text);
  EXPECT_EQ(untraced.slow().at(0).trace_view(), "");
  EXPECT_FALSE(flight_record_json(untraced.slow().at(0)).contains("trace_id"));

  const nlohmann::json j = flight_record_json(r);
  EXPECT_EQ(j["request_id"], "42-1");
  EXPECT_EQ(j["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(j["started_ms"], 1700000000000);
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["duration_ms"], 3.0);
  EXPECT_EQ(j["peer"], "10.0.0.7:40000");
  EXPECT_EQ(j["nth_on_connection"], 1);
  EXPECT_EQ(j["relay_held_ms"], 0.25);
  EXPECT_FALSE(j.contains("path"));
  // Offsets from the request's first byte (which came 1 us before its head, exchange_builder).
  const nlohmann::json& t = j["timing_ms"];
  EXPECT_EQ(t["accepted"], -2.0);
  EXPECT_EQ(t["upstream_connected"], -1.0);
  EXPECT_EQ(t["request_head"], 0.001);
  EXPECT_EQ(t["request_sent"], 0.001);
  EXPECT_EQ(t["response_head"], 1.501);
  EXPECT_EQ(t["last_byte"], 3.001);
}

TEST(FlightView, SlowestPerWindowWithThePreviousKeptAndFailuresAcrossWindows) {
  const FlightOptions o = options(2);
  FlightCandidates delta;
  delta.offer(taking(10), 0, o);
  delta.offer(taking(20), 0, o);
  delta.offer(taking(1, 500), 0, o);
  FlightViewPtr v = merge_flight(nullptr, delta, 2, 100);
  ASSERT_EQ(v->slow.size(), 2u);
  EXPECT_EQ(v->slow[0].duration, 20'000'000);  // slowest first
  EXPECT_TRUE(v->previous.empty());
  EXPECT_EQ(v->failures.size(), 1u);
  EXPECT_TRUE(delta.empty()) << "a route's first records are adopted, not copied";
  // Nothing that would be kept: the same shared view, no copy.
  delta.clear();
  delta.offer(taking(5), 0, o);
  EXPECT_EQ(merge_flight(v, delta, 2, 100), v);

  // Window 101 starts over: a faster record is the slowest of it.
  v = merge_flight(v, delta, 2, 101);
  ASSERT_EQ(v->slow.size(), 1u);
  EXPECT_EQ(v->slow[0].duration, 5'000'000);
  ASSERT_EQ(v->previous.size(), 2u);
  EXPECT_EQ(v->previous[0].duration, 20'000'000);

  // Nothing merged for a while: window 102 shows 101's as previous, 104 nothing slow.
  EXPECT_EQ(roll_flight(v, 101), v);
  EXPECT_TRUE(roll_flight(v, 102)->slow.empty());
  EXPECT_EQ(roll_flight(v, 102)->previous.size(), 1u);
  EXPECT_TRUE(roll_flight(roll_flight(v, 102), 104)->previous.empty());
  EXPECT_EQ(roll_flight(v, 104)->failures.size(), 1u);  // failures are not per window
}

TEST(FlightView, MergingKeepsTheSlowestOfAllWorkersAndTheNewestFailures) {
  const FlightOptions o = options(2);
  FlightCandidates w1, w2;
  w1.offer(taking(10), 0, o);
  w1.offer(taking(30), 0, o);
  w2.offer(taking(20), 0, o);
  w2.offer(taking(40), 0, o);
  w1.offer(taking(1, 500, 1'000'000'000), 0, o);
  w2.offer(taking(1, 500, 3'000'000'000), 0, o);
  w2.offer(taking(1, 500, 2'000'000'000), 0, o);
  FlightViewPtr v = merge_flight(merge_flight(nullptr, w1, 2, 7), w2, 2, 7);
  ASSERT_EQ(v->slow.size(), 2u);
  EXPECT_EQ(v->slow[0].duration, 40'000'000);
  EXPECT_EQ(v->slow[1].duration, 30'000'000);
  ASSERT_EQ(v->failures.size(), 2u);
  EXPECT_EQ(v->failures[0].first_byte, 3'000'000'000 - 1000);  // newest first
  EXPECT_EQ(v->failures[1].first_byte, 2'000'000'000 - 1000);
}

// A worker's delta store (histograms deferred) and the aggregator's store, as the stats hub
// pairs them.
struct Stores {
  explicit Stores(size_t per_route)
      : delta(limits(per_route, true), nullptr, nullptr),
        total(limits(per_route, false), nullptr, nullptr) {}
  static StoreLimits limits(size_t per_route, bool deferred) {
    StoreLimits l;
    l.flight = options(per_route);
    l.defer_histograms = deferred;
    return l;
  }
  RouteStore delta, total;
};

TEST(FlightRecorder, AMergeTellsTheWorkerWhatTheRoutesSlowestListAlreadyBeats) {
  Stores stores(3);
  RouteStore& delta = stores.delta;
  RouteStore& total = stores.total;
  total.set_flight_window(1, 60'000'000'000);  // ends at t = 60 s
  for (double ms : {4.0, 12.0, 8.0}) delta.record(taking(ms), "/api/search");
  total.merge_from(delta);
  delta.clear_counts();
  auto kept = [&] {
    size_t n = 0;
    delta.for_each([&](const RouteStats& s) {
      if (s.candidates) n += s.candidates->slow().size();
    });
    return n;
  };
  for (int i = 0; i < 10; ++i) delta.record(taking(3), "/api/search");
  EXPECT_EQ(kept(), 0u) << "the window's 3 slowest are all slower than 3 ms";
  delta.record(taking(9), "/api/search");
  EXPECT_EQ(kept(), 1u);
  total.merge_from(delta);
  delta.clear_counts();
  const RouteTableSnapshot snap = total.snapshot();
  ASSERT_EQ(snap.routes.size(), 1u);
  EXPECT_EQ(durations(snap.routes[0].flight->slow),
            (std::vector<MonoNanos>{12'000'000, 9'000'000, 8'000'000}));
}

// The path of a record through the stores: a worker's delta store records candidates, the
// aggregator's store merges them into its log, its snapshot shows them per route, /slow filters.
TEST(FlightRecorder, FromDeltaStoreToSnapshotAndSlowFilters) {
  Stores stores(3);
  RouteStore& delta = stores.delta;
  RouteStore& total = stores.total;
  total.set_flight_window(1);
  for (double ms : {4.0, 12.0, 8.0, 2.0}) delta.record(taking(ms), "/api/search");
  Exchange checkout = completed("/api/checkout", 502, 100, 200, 5'000'000'000);
  checkout.method = testing::kPost;
  checkout.connection_id = 7;
  checkout.sequence = 2;
  delta.record(checkout, "/api/checkout");
  delta.record(completed("/", 200), "/");
  total.merge_from(delta);
  delta.clear_counts();

  const RouteTableSnapshot snap = total.snapshot();
  const RouteSummary* search = nullptr;
  for (const RouteSummary& r : snap.routes)
    if (r.route == "/api/search") search = &r;
  ASSERT_NE(search, nullptr);
  ASSERT_TRUE(search->flight);
  ASSERT_EQ(search->flight->slow.size(), 3u);
  EXPECT_EQ(search->flight->slow[0].duration, 12'000'000);

  SlowFilter all;
  nlohmann::json j = build_slow(snap, all, {});
  ASSERT_EQ(j["routes"].size(), 3u);
  EXPECT_EQ(j["routes"][0]["route"], "/api/search");  // the slowest route first
  EXPECT_EQ(j["routes"][0]["slow"].size(), 3u);

  SlowFilter route;
  route.route = "/api/*";
  route.min_ms = 5;
  j = build_slow(snap, route, {});
  ASSERT_EQ(j["routes"].size(), 1u) << j.dump();
  EXPECT_EQ(j["routes"][0]["slow"].size(), 2u);  // 12 and 8 ms

  SlowFilter errors;
  ASSERT_EQ(SlowFilter::parse_status("5xx", errors.status), "");
  j = build_slow(snap, errors, {});
  ASSERT_EQ(j["routes"].size(), 1u);
  EXPECT_EQ(j["routes"][0]["route"], "/api/checkout");
  EXPECT_EQ(j["routes"][0]["method"], "POST");
  ASSERT_EQ(j["routes"][0]["failures"].size(), 1u);
  EXPECT_EQ(j["routes"][0]["failures"][0]["status"], 502);

  SlowFilter by_id;
  by_id.id = "7-2";
  j = build_slow(snap, by_id, {});
  ASSERT_EQ(j["routes"].size(), 1u);
  EXPECT_EQ(j["routes"][0]["failures"][0]["request_id"], "7-2");

  SlowFilter bad;
  EXPECT_NE(SlowFilter::parse_status("50", bad.status), "");
}

// status=error asks for what the failures list holds: a gRPC call that failed with HTTP 200 is
// kept there (flight_failure), and the filter used to drop it, showing "no failures".
TEST(FlightRecorder, ErrorFilterMatchesEveryKeptFailureGrpcToo) {
  FlightCandidates c;
  Exchange grpc = completed("/pkg.Svc/Call", 200);
  grpc.grpc = true;
  grpc.grpc_status = 14;  // UNAVAILABLE
  c.offer(grpc, 1, options(2));
  ASSERT_EQ(c.failures().size(), 1u);
  SlowFilter errors;
  ASSERT_EQ(SlowFilter::parse_status("error", errors.status), "");
  EXPECT_TRUE(errors.matches(c.failures()[0]));
  FlightCandidates ok;
  Exchange fine = completed("/pkg.Svc/Call", 200);
  fine.grpc = true;
  fine.grpc_status = 0;
  ok.offer(fine, 1, options(2));
  ASSERT_EQ(ok.slow().size(), 1u);
  EXPECT_FALSE(errors.matches(ok.slow()[0]));
}

// /slow's numbers are read whole or refused: stod/stoull read "5abc" as 5, "0x10" as 16 and a
// limit of "-1" as 2^64-1, answering a typo with a filter nobody asked for.
TEST(SlowFilter, TraceIdsMatchWhateverTheirCaseRequestIdsExactly) {
  FlightCandidates c;
  Exchange e = taking(3);
  e.trace_id = "A3CE929D0E0E4736";  // B3 allows upper case
  e.connection_id = 12;
  e.sequence = 3;
  c.offer(e, 0, options(1));
  const FlightRecord& r = c.slow().at(0);
  SlowFilter f;
  for (const char* id : {"a3ce929d0e0e4736", "A3CE929D0E0E4736", "12-3"}) {
    f.id = id;
    EXPECT_TRUE(f.matches(r)) << id;
  }
  for (const char* id : {"a3ce929d0e0e473", "12-30", "b3ce929d0e0e4736"}) {
    f.id = id;
    EXPECT_FALSE(f.matches(r)) << id;
  }
}

TEST(SlowFilter, NumbersAreWholeOrRefused) {
  SlowFilter f;
  EXPECT_EQ(f.parse_numbers("", ""), "");
  EXPECT_EQ(f.min_ms, 0);
  EXPECT_EQ(f.limit, 0u);
  EXPECT_EQ(f.parse_numbers("2.5", "3"), "");
  EXPECT_EQ(f.min_ms, 2.5);
  EXPECT_EQ(f.limit, 3u);
  for (const char* bad : {"5abc", "0x10", "-1", "nan", "inf", "1e999", " 5", "+5", "abc"}) {
    SlowFilter g;
    EXPECT_NE(g.parse_numbers(bad, ""), "") << bad;
  }
  for (const char* bad : {"-1", "1.5", "5abc", "99999999999999999999999", " 1", "+1", "x"}) {
    SlowFilter g;
    const std::string error = g.parse_numbers("", bad);
    EXPECT_NE(error, "") << bad;
    EXPECT_NE(error.find("limit"), std::string::npos) << error;
    EXPECT_EQ(g.limit, 0u) << bad;
  }
}

// /slow of a big table needs little more than its text at its peak: it used to build one JSON
// tree of every route's records first, several times the text's size (about 100 MB for 10,000
// routes, for each concurrent reader of a filtered /slow).
TEST(FlightRecorder, SlowOfManyRoutesNeedsLittleMoreThanItsText) {
  StoreLimits limits;
  limits.flight = options(5);
  limits.max_routes = 5000;
  limits.defer_histograms = true;
  RouteStore delta(limits, nullptr, nullptr);
  limits.defer_histograms = false;
  RouteStore total(limits, nullptr, nullptr);
  total.set_flight_window(1);
  for (int route = 0; route < 2000; ++route) {
    const std::string name = "/api/r" + std::to_string(route);
    for (double ms : {4.0, 12.0, 8.0, 2.0, 6.0}) {
      Exchange e = taking(ms + route * 0.001);
      e.connection_id = static_cast<uint64_t>(route) + 1;
      delta.record(e, name);
    }
  }
  total.merge_from(delta);
  delta.clear_counts();
  const RouteTableSnapshot snap = total.snapshot();
  SlowFilter all;
  const size_t text_size = render_slow(snap, all, {}).size();
  ASSERT_GT(text_size, 2'000'000u);
  const int64_t before = testing::heap_in_use();
  testing::reset_heap_peak();
  const std::string text = render_slow(snap, all, {});
  const int64_t needed = testing::heap_peak() - before;
  EXPECT_EQ(text.size(), text_size);
  EXPECT_LT(needed, static_cast<int64_t>(3 * text_size)) << needed << " bytes for " << text_size;
}

TEST(FlightRecorder, OffRecordsNothing) {
  StoreLimits limits;  // per_route 0
  RouteStore delta(limits, nullptr, nullptr);
  RouteStore total(limits, nullptr, nullptr);
  delta.record(taking(3), "/a");
  delta.record(taking(3, 500), "/a");
  total.merge_from(delta);
  const RouteTableSnapshot snap = total.snapshot();
  ASSERT_EQ(snap.routes.size(), 1u);
  EXPECT_FALSE(snap.routes[0].flight);
}

}  // namespace
}  // namespace netprof
