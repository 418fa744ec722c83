// Trace ids read from request heads: which headers, which values, and that the HTTP/1 tracker
// finds them however the head is split, numbers requests and keeps ids apart per request.
#include "http/trace_id.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/tracker.h"

namespace netprof {
namespace {

constexpr std::string_view kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr std::string_view kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

TEST(TraceId, HeaderNamesInAnyCase) {
  EXPECT_EQ(trace_source_of("traceparent"), TraceSource::kTraceparent);
  EXPECT_EQ(trace_source_of("TraceParent"), TraceSource::kTraceparent);
  EXPECT_EQ(trace_source_of("X-B3-TraceId"), TraceSource::kB3);
  EXPECT_EQ(trace_source_of("x-request-id"), TraceSource::kRequestId);
  EXPECT_EQ(trace_source_of("X-Request-Ids"), TraceSource::kNone);
  EXPECT_EQ(trace_source_of("tracestate"), TraceSource::kNone);
  EXPECT_EQ(trace_source_of(""), TraceSource::kNone);
}

TEST(TraceId, TraceparentIsValidatedAndItsTraceIdTaken) {
  const auto id = [](std::string_view v) {
    return std::string(trace_id_of(TraceSource::kTraceparent, v));
  };
  EXPECT_EQ(id(kTraceparent), kTraceId);
  EXPECT_EQ(id(std::string(" ") + std::string(kTraceparent) + " "), kTraceId);  // OWS
  // A later version may append fields; version 00 may not.
  EXPECT_EQ(id("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"), kTraceId);
  EXPECT_EQ(id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"), "");
  EXPECT_EQ(id("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), "");  // version ff
  EXPECT_EQ(id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), "");  // zero trace
  EXPECT_EQ(id("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"), "");  // zero parent
  EXPECT_EQ(id("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), "");  // upper case
  EXPECT_EQ(id("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"), "");   // short
  EXPECT_EQ(id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"), "");
  EXPECT_EQ(id(""), "");
}

TEST(TraceId, B3AndRequestId) {
  EXPECT_EQ(trace_id_of(TraceSource::kB3, "80f198ee56343ba864fe8b2a57d3eff7"),
            "80f198ee56343ba864fe8b2a57d3eff7");
  EXPECT_EQ(trace_id_of(TraceSource::kB3, "e457b5a2e4d86bd1"), "e457b5a2e4d86bd1");
  EXPECT_EQ(trace_id_of(TraceSource::kB3, "e457b5a2e4d86bd"), "");  // 15 digits
  EXPECT_EQ(trace_id_of(TraceSource::kB3, "0000000000000000"), "");
  EXPECT_EQ(trace_id_of(TraceSource::kB3, "e457b5a2e4d86bdz"), "");
  EXPECT_EQ(trace_id_of(TraceSource::kRequestId, "f058ebd6-02f7-4d3f-942e-904344e8cde5"),
            "f058ebd6-02f7-4d3f-942e-904344e8cde5");
  EXPECT_EQ(trace_id_of(TraceSource::kRequestId, "req_1.2:3"), "req_1.2:3");
  // Free text that could be somebody's data is not kept.
  EXPECT_EQ(trace_id_of(TraceSource::kRequestId, "alice@example.com"), "");
  EXPECT_EQ(trace_id_of(TraceSource::kRequestId, "user alice"), "");
  EXPECT_EQ(trace_id_of(TraceSource::kRequestId, "dXNlcjpwYXNz=="), "");
  EXPECT_EQ(trace_id_of(TraceSource::kRequestId, "a/b"), "");
  EXPECT_EQ(trace_id_of(TraceSource::kRequestId, std::string(65, 'a')), "");
  EXPECT_EQ(trace_id_of(TraceSource::kRequestId, std::string(64, 'a')), std::string(64, 'a'));
  EXPECT_EQ(trace_id_of(TraceSource::kRequestId, ""), "");
}

TEST(TraceId, SlotPrefersTraceparentThenB3ThenRequestIdAndKeepsTheFirstValid) {
  TraceIdSlot slot;
  slot.clear();
  slot.offer(TraceSource::kRequestId, "abc");
  EXPECT_EQ(slot.view(), "abc");
  slot.offer(TraceSource::kRequestId, "def");  // the first of a kind stays
  EXPECT_EQ(slot.view(), "abc");
  slot.offer(TraceSource::kB3, "not hex");  // invalid: ignored
  EXPECT_EQ(slot.view(), "abc");
  slot.offer(TraceSource::kB3, "e457b5a2e4d86bd1");
  EXPECT_EQ(slot.view(), "e457b5a2e4d86bd1");
  slot.offer(TraceSource::kTraceparent, kTraceparent);
  EXPECT_EQ(slot.view(), kTraceId);
  slot.offer(TraceSource::kRequestId, "xyz");
  EXPECT_EQ(slot.view(), kTraceId);
  slot.clear();
  EXPECT_EQ(slot.view(), "");
}

// What the tracker emitted, copied.
struct Seen {
  uint32_t sequence;
  std::string path, trace_id;
};

class Sink final : public ExchangeSink {
 public:
  void on_exchange(const Exchange& e) override {
    seen.push_back({e.sequence, std::string(e.path), std::string(e.trace_id)});
  }
  void on_unparsed_connection(uint32_t) override {}
  std::vector<Seen> seen;
};

std::vector<Seen> run_split(std::string_view requests, size_t piece, bool trace_ids = true) {
  Sink sink;
  TrackerLimits limits;
  limits.trace_ids = trace_ids;
  HttpTracker tracker(sink, 0, limits);
  for (size_t i = 0; i < requests.size(); i += piece) {
    tracker.on_client_bytes(requests.substr(i, piece), 1000 + static_cast<MonoNanos>(i));
  }
  const std::string_view ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  for (int i = 0; i < 3; ++i) tracker.on_server_bytes(ok, 5000 + i);
  return sink.seen;
}

TEST(TrackerTraceIds, ReadFromTheHeadAtAnySplitAndNumberedPerConnection) {
  const std::string requests =
      "GET /a HTTP/1.1\r\nHost: x\r\nX-Request-Id: req-1\r\ntraceparent: " +
      std::string(kTraceparent) +
      "\r\n\r\n"
      "GET /b HTTP/1.1\r\nX-Request-ID:  req-2 \r\n\r\n"
      "GET /c HTTP/1.1\r\nX-Request-Id: alice@example.com\r\nUser-Agent: traceparent\r\n\r\n";
  for (size_t piece = 1; piece <= requests.size(); ++piece) {
    SCOPED_TRACE(piece);
    const std::vector<Seen> seen = run_split(requests, piece);
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].sequence, 1u);
    EXPECT_EQ(seen[0].trace_id, kTraceId);
    EXPECT_EQ(seen[1].sequence, 2u);
    EXPECT_EQ(seen[1].trace_id, "req-2");
    EXPECT_EQ(seen[2].sequence, 3u);
    EXPECT_EQ(seen[2].trace_id, "");  // not kept: could be somebody's address
  }
}

// A version-00 traceparent is exactly 55 characters. Padded with blanks past what the reader
// keeps, then followed by more text, it used to pass: the kept prefix's trailing blanks were
// trimmed and what followed them was never seen. Blanks alone after it are whitespace around
// a field value, and still accepted.
TEST(TrackerTraceIds, ATraceparentCutAtBlanksWithTextAfterIsRefused) {
  const std::string valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::string padded = "GET /a HTTP/1.1\r\nHost: x\r\ntraceparent: " + valid +
                             std::string(20, ' ') + "garbage\r\n\r\n";
  const std::string blanks_only =
      "GET /b HTTP/1.1\r\nHost: x\r\ntraceparent: " + valid + std::string(20, ' ') + "\r\n\r\n";
  for (size_t piece : {size_t{1}, size_t{7}, size_t{4096}}) {
    auto seen = run_split(padded, piece);
    ASSERT_EQ(seen.size(), 1u) << piece;
    EXPECT_EQ(seen[0].trace_id, "") << piece;
    seen = run_split(blanks_only, piece);
    ASSERT_EQ(seen.size(), 1u) << piece;
    EXPECT_EQ(seen[0].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736") << piece;
  }
}

TEST(TrackerTraceIds, OffMeansNone) {
  const std::string requests =
      "GET /a HTTP/1.1\r\ntraceparent: " + std::string(kTraceparent) + "\r\n\r\n";
  const std::vector<Seen> seen = run_split(requests, requests.size(), /*trace_ids=*/false);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].trace_id, "");
  EXPECT_EQ(seen[0].sequence, 1u);
}

TEST(TrackerTraceIds, ResponseHeadersAreNeverRead) {
  Sink sink;
  HttpTracker tracker(sink, 0);
  tracker.on_client_bytes(std::string_view("GET / HTTP/1.1\r\n\r\n"), 1);
  tracker.on_server_bytes(
      std::string_view("HTTP/1.1 200 OK\r\nX-Request-Id: from-server\r\nContent-Length: 0\r\n\r\n"),
      2);
  ASSERT_EQ(sink.seen.size(), 1u);
  EXPECT_EQ(sink.seen[0].trace_id, "");
}

}  // namespace
}  // namespace netprof
