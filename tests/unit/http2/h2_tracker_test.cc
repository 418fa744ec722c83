// HTTP/2 tracker on literal byte streams. Every script is also replayed with each step split
// at every byte position (and byte by byte): the result must not depend on how TCP cut it.
#include <gtest/gtest.h>
#include <llhttp.h>
#include <nghttp2/nghttp2.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "h2_wire.h"
#include "http2/protocol_tracker.h"
#include "http2/tracker.h"

namespace netprof {
namespace {

using namespace netprof::testing::h2;

struct Seen {
  uint8_t method = 0;
  std::string path;
  bool path_truncated = false;
  uint16_t status = 0;
  MonoNanos request_first_byte = 0, request_headers_done = 0, request_done = 0;
  MonoNanos response_headers_done = 0, response_done = 0;
  uint64_t request_bytes = 0, request_body_bytes = 0, response_bytes = 0, response_body_bytes = 0;
  ExchangeOutcome outcome = ExchangeOutcome::kCompleted;
  WireProtocol protocol = WireProtocol::kHttp1;
  bool grpc = false;
  int grpc_status = -1;
  bool operator==(const Seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& e) {
  return os << "{" << llhttp_method_name(static_cast<llhttp_method_t>(e.method)) << " " << e.path
            << " status=" << e.status << " outcome=" << int(e.outcome)
            << " proto=" << int(e.protocol) << " grpc=" << e.grpc << "/" << e.grpc_status
            << " t=" << e.request_first_byte << "," << e.request_headers_done << ","
            << e.request_done << "," << e.response_headers_done << "," << e.response_done
            << " bytes=" << e.request_bytes << "/" << e.request_body_bytes << ","
            << e.response_bytes << "/" << e.response_body_bytes << "}";
}

struct Sink final : ExchangeSink {
  void on_exchange(const Exchange& x) override {
    exchanges.push_back({x.method, std::string(x.path), x.path_truncated, x.status,
                         x.request_first_byte, x.request_headers_done, x.request_done,
                         x.response_headers_done, x.response_done, x.request_bytes,
                         x.request_body_bytes, x.response_bytes, x.response_body_bytes, x.outcome,
                         x.protocol, x.grpc, x.grpc_status});
  }
  void on_unparsed_connection(uint32_t) override { ++unparsed; }
  void on_untracked_stream(uint32_t) override { ++untracked; }
  std::vector<Seen> exchanges;
  int unparsed = 0;
  uint64_t untracked = 0;
};

struct Result {
  std::vector<Seen> exchanges;
  int unparsed = 0;
  uint64_t untracked = 0;
  bool operator==(const Result&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Result& r) {
  os << "unparsed=" << r.unparsed << " untracked=" << r.untracked << " [";
  for (const auto& e : r.exchanges) os << e << " ";
  return os << "]";
}

struct Step {
  bool client;  // else server; empty bytes with close=true closes the connection
  MonoNanos at;
  std::string bytes;
  bool close = false;
  bool reset = false;
};
Step C(MonoNanos at, std::string b) { return {true, at, std::move(b)}; }
Step S(MonoNanos at, std::string b) { return {false, at, std::move(b)}; }
Step Close(MonoNanos at, bool reset = false) { return {false, at, {}, true, reset}; }

using Chunker = std::function<std::vector<size_t>(size_t step, size_t len)>;

template <typename Tracker>
void feed(Tracker& t, const Step& s, const std::vector<size_t>& pieces) {
  if (s.close) {
    t.on_connection_closed(s.at, s.reset);
    return;
  }
  size_t off = 0;
  for (size_t n : pieces) {
    std::span<const char> b(s.bytes.data() + off, n);
    if (s.client) {
      t.on_client_bytes(b, s.at);
    } else {
      t.on_server_bytes(b, s.at);
    }
    off += n;
  }
}

template <typename Tracker, typename... Args>
Result run(const std::vector<Step>& script, const Chunker& chunker, Args&&... args) {
  Sink sink;
  Tracker t(sink, 7, std::forward<Args>(args)...);
  for (size_t i = 0; i < script.size(); ++i) {
    const size_t len = script[i].bytes.size();
    feed(t, script[i], chunker ? chunker(i, len) : std::vector<size_t>{len});
  }
  Result r{sink.exchanges, sink.unparsed, sink.untracked};
  if constexpr (std::is_same_v<Tracker, Http2Tracker>) {
    EXPECT_EQ(t.untracked_streams(), sink.untracked) << "every untracked stream reaches the sink";
  }
  return r;
}

// Whole, every two-piece split of every step, and byte by byte: all must agree.
template <typename Tracker = Http2Tracker, typename... Args>
Result run_all_splits(const std::vector<Step>& script, Args... args) {
  const Result whole = run<Tracker>(script, nullptr, args...);
  for (size_t i = 0; i < script.size(); ++i) {
    for (size_t k = 1; k < script[i].bytes.size(); ++k) {
      const Result split = run<Tracker>(
          script,
          [&](size_t step, size_t len) {
            return step == i ? std::vector<size_t>{k, len - k} : std::vector<size_t>{len};
          },
          args...);
      EXPECT_EQ(split, whole) << "step " << i << " split at " << k;
      if (split != whole) return whole;
    }
  }
  const Result bytewise = run<Tracker>(
      script, [](size_t, size_t len) { return std::vector<size_t>(len, 1); }, args...);
  EXPECT_EQ(bytewise, whole) << "byte by byte";
  return whole;
}

const std::string kPreface(kHttp2Preface);

Seen h2(uint8_t method, std::string path, uint16_t status) {
  Seen e;
  e.method = method;
  e.path = std::move(path);
  e.status = status;
  e.protocol = WireProtocol::kHttp2;
  return e;
}

TEST(Http2Tracker, SimpleGetIsOneExchange) {
  const std::string req = frame(HEADERS, END_STREAM | END_HEADERS, 1, get("/users/42?x=1"));
  const std::string resp_h = frame(HEADERS, END_HEADERS, 1, indexed(kStatus200));
  const std::string resp_d = frame(DATA, END_STREAM, 1, "hello");
  const Result r = run_all_splits({
      C(10, kPreface + settings(setting(3, 100)) + req),
      S(20, settings() + frame(SETTINGS, ACK, 0, "")),
      C(25, frame(SETTINGS, ACK, 0, "") + frame(WINDOW_UPDATE, 0, 0, u32(65535))),
      S(30, resp_h),
      S(40, frame(PING, 0, 0, std::string(8, 'p')) + resp_d),
  });
  Seen e = h2(HTTP_GET, "/users/42?x=1", 200);
  e.request_first_byte = e.request_headers_done = e.request_done = 10;
  e.response_headers_done = 30;
  e.response_done = 40;
  e.request_bytes = req.size();
  e.response_bytes = resp_h.size() + resp_d.size();
  e.response_body_bytes = 5;
  EXPECT_EQ(r, (Result{{e}, 0, 0}));
}

TEST(Http2Tracker, InterleavedStreamsContinuationPaddingPriority) {
  // Stream 1: POST with a header block over HEADERS(PADDED|PRIORITY) + CONTINUATION, and a
  // padded DATA body. Stream 3: GET. Responses interleave and stream 3 finishes first.
  const std::string block = indexed(kMethodPost) + indexed(kSchemeHttp) +
                            literal(kPath, "/orders") + literal(kAuthority, "example");
  const std::string h1 =
      frame(HEADERS, PADDED | PRIO, 1,
            std::string(1, '\3') + u32(0) + "\x10" + block.substr(0, 5) + std::string(3, '\0'));
  const std::string c1 = frame(CONTINUATION, END_HEADERS, 1, block.substr(5));
  const std::string d1 =
      frame(DATA, PADDED | END_STREAM, 1, std::string(1, '\4') + "body" + std::string(4, '\0'));
  const std::string h3 = frame(HEADERS, END_STREAM | END_HEADERS, 3, get("/a"));
  const std::string r1h = frame(HEADERS, END_HEADERS, 1, indexed(kStatus500));
  const std::string r3h = frame(HEADERS, END_HEADERS, 3, indexed(kStatus404));
  const std::string r1d = frame(DATA, 0, 1, "err");
  const std::string r3d = frame(DATA, END_STREAM, 3, "nope");
  const std::string r1e = frame(DATA, END_STREAM, 1, "");
  const Result r = run_all_splits({
      C(10, kPreface + settings() + h1),
      C(11, c1 + h3),
      S(20, settings() + r1h + r3h + r1d),
      C(21, frame(PRIORITY, 0, 3, u32(1) + "\x20") + d1),
      S(30, r3d),
      S(40, r1e),
  });
  Seen e3 = h2(HTTP_GET, "/a", 404);
  e3.request_first_byte = e3.request_headers_done = e3.request_done = 11;
  e3.response_headers_done = 20;
  e3.response_done = 30;
  e3.request_bytes = h3.size();
  e3.response_bytes = r3h.size() + r3d.size();
  e3.response_body_bytes = 4;
  Seen e1 = h2(HTTP_POST, "/orders", 500);
  e1.request_first_byte = 10;
  e1.request_headers_done = 11;
  e1.request_done = 21;
  e1.response_headers_done = 20;
  e1.response_done = 40;
  e1.request_bytes = h1.size() + c1.size() + d1.size();
  e1.request_body_bytes = 4;
  e1.response_bytes = r1h.size() + r1d.size() + r1e.size();
  e1.response_body_bytes = 3;
  EXPECT_EQ(r, (Result{{e3, e1}, 0, 0}));
}

TEST(Http2Tracker, InterimResponseAndTrailers) {
  const std::string req = frame(HEADERS, END_HEADERS, 1, get("/up"));
  const Result r = run_all_splits({
      C(10, kPreface + settings() + req + frame(DATA, END_STREAM, 1, "xy")),
      S(20, settings() + frame(HEADERS, END_HEADERS, 1, literal(kStatus, "100"))),
      S(30, frame(HEADERS, END_HEADERS, 1, indexed(kStatus204))),
      S(40, frame(HEADERS, END_STREAM | END_HEADERS, 1, literal("x-trailer", "1"))),
  });
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].status, 204);
  EXPECT_EQ(r.exchanges[0].response_headers_done, 30);
  EXPECT_EQ(r.exchanges[0].response_done, 40);
  EXPECT_EQ(r.exchanges[0].request_body_bytes, 2u);
}

TEST(Http2Tracker, ResetAndGoawayBeforeResponseAreErrors) {
  const Result r = run_all_splits({
      C(10, kPreface + settings() + frame(HEADERS, END_STREAM | END_HEADERS, 1, get("/1")) +
                frame(HEADERS, END_STREAM | END_HEADERS, 3, get("/3")) +
                frame(HEADERS, END_STREAM | END_HEADERS, 5, get("/5"))),
      S(20, settings() + frame(RST_STREAM, 0, 1, u32(2))),
      S(30, frame(GOAWAY, 0, 0, u32(3) + u32(0) + "debug")),
      S(40, frame(HEADERS, END_STREAM | END_HEADERS, 3, indexed(kStatus200))),
      // a late frame of the reset stream is ignored
      C(41, frame(DATA, END_STREAM, 1, "")),
  });
  ASSERT_EQ(r.exchanges.size(), 3u);
  EXPECT_EQ(r.exchanges[0].path, "/1");
  EXPECT_EQ(r.exchanges[0].outcome, ExchangeOutcome::kResetBeforeResponse);
  EXPECT_EQ(r.exchanges[0].status, 0);
  EXPECT_EQ(r.exchanges[1].path, "/5");
  EXPECT_EQ(r.exchanges[1].outcome, ExchangeOutcome::kResetBeforeResponse);
  EXPECT_EQ(r.exchanges[2].path, "/3");
  EXPECT_EQ(r.exchanges[2].outcome, ExchangeOutcome::kCompleted);
  EXPECT_EQ(r.exchanges[2].status, 200);
}

TEST(Http2Tracker, ConnectionEndEmitsOpenStreams) {
  const Result r = run_all_splits({
      C(10, kPreface + settings() + frame(HEADERS, END_STREAM | END_HEADERS, 1, get("/slow"))),
      S(20, settings() + frame(HEADERS, END_HEADERS, 1, indexed(kStatus200)) +
                frame(DATA, 0, 1, "part")),
      // a request whose header block never completed is not reported
      C(25, frame(HEADERS, END_STREAM, 3, get("/cut"))),
      Close(30, true),
  });
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].path, "/slow");
  EXPECT_EQ(r.exchanges[0].outcome, ExchangeOutcome::kResetBeforeResponse);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 4u);
}

TEST(Http2Tracker, DynamicTableCarriesAcrossStreams) {
  // Stream 1 enters ":path: /users/42" into the dynamic table (index 62); stream 3 refers to it.
  const std::string b1 = indexed(kMethodGet) + indexed(kSchemeHttp) + indexing(kPath, "/users/42") +
                         literal(kAuthority, "h");
  const std::string b3 = indexed(kMethodGet) + indexed(kSchemeHttp) + indexed(62);
  // The response side has its own table: "x-id: 7" at index 62 there.
  const std::string s1 = indexed(kStatus200) + std::string("\x40", 1) + str("x-id") + str("7");
  const std::string s3 = indexed(kStatus200) + indexed(62);
  const Result r = run_all_splits({
      C(10, kPreface + settings() + frame(HEADERS, END_STREAM | END_HEADERS, 1, b1) +
                frame(HEADERS, END_STREAM | END_HEADERS, 3, b3)),
      S(20, settings() + frame(HEADERS, END_STREAM | END_HEADERS, 1, s1) +
                frame(HEADERS, END_STREAM | END_HEADERS, 3, s3)),
  });
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].path, "/users/42");
  EXPECT_EQ(r.exchanges[1].path, "/users/42");
  EXPECT_EQ(r.unparsed, 0);
}

TEST(Http2Tracker, HeaderTableSizeFollowsTheDecodingSidesSettings) {
  const std::string grow = table_size_update(8192) + get("/big");
  // The server allows 8192 for the requests' table: the client may grow it.
  Result r = run_all_splits({
      C(10, kPreface + settings()),
      S(20, settings(setting(1, 8192))),
      C(30, frame(SETTINGS, ACK, 0, "") + frame(HEADERS, END_STREAM | END_HEADERS, 1, grow)),
      S(40, frame(HEADERS, END_STREAM | END_HEADERS, 1, indexed(kStatus200))),
  });
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].path, "/big");
  // The client's own SETTINGS do not bound the requests' table: the same growth is invalid.
  r = run_all_splits({
      C(10, kPreface + settings(setting(1, 8192))),
      C(30, frame(HEADERS, END_STREAM | END_HEADERS, 1, grow)),
  });
  EXPECT_EQ(r.unparsed, 1);
  EXPECT_TRUE(r.exchanges.empty());
  // ...but they bound the responses' table.
  r = run_all_splits({
      C(10, kPreface + settings(setting(1, 8192)) +
                frame(HEADERS, END_STREAM | END_HEADERS, 1, get("/x"))),
      S(20, settings() + frame(HEADERS, END_STREAM | END_HEADERS, 1,
                               table_size_update(8192) + indexed(kStatus200))),
  });
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].status, 200);
}

TEST(Http2Tracker, Grpc) {
  const std::string req = indexed(kMethodPost) + indexed(kSchemeHttp) +
                          literal(kPath, "/pkg.Greeter/SayHello") + literal(kAuthority, "h") +
                          literal(kContentType, "application/grpc+proto") +
                          literal("te", "trailers");
  const std::string msg = std::string("\0\0\0\0\3abc", 8);
  const Result r = run_all_splits({
      C(10, kPreface + settings() + frame(HEADERS, END_HEADERS, 1, req) +
                frame(DATA, END_STREAM, 1, msg) + frame(HEADERS, END_HEADERS, 3, req) +
                frame(DATA, END_STREAM, 3, msg)),
      // stream 1: headers, message, trailers with grpc-status 5
      S(20, settings() +
                frame(HEADERS, END_HEADERS, 1,
                      indexed(kStatus200) + literal(kContentType, "application/grpc")) +
                frame(DATA, 0, 1, msg)),
      S(30, frame(HEADERS, END_STREAM | END_HEADERS, 1,
                  literal("grpc-status", "5") + literal("grpc-message", "not found"))),
      // stream 3: trailers-only response
      S(40, frame(HEADERS, END_STREAM | END_HEADERS, 3,
                  indexed(kStatus200) + literal(kContentType, "application/grpc") +
                      literal("grpc-status", "0"))),
  });
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_TRUE(r.exchanges[0].grpc);
  EXPECT_EQ(r.exchanges[0].path, "/pkg.Greeter/SayHello");
  EXPECT_EQ(r.exchanges[0].grpc_status, 5);
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 8u);
  EXPECT_EQ(r.exchanges[0].response_done, 30);
  EXPECT_TRUE(r.exchanges[1].grpc);
  EXPECT_EQ(r.exchanges[1].grpc_status, 0);
  EXPECT_EQ(r.exchanges[1].response_done, 40);
}

// A gRPC server stream the client cancels after the response headers and a message: an error
// without a gRPC status; a deadline the server enforces: a trailers-only DEADLINE_EXCEEDED.
TEST(Http2Tracker, GrpcCancelledMidStreamAndDeadline) {
  const std::string req = indexed(kMethodPost) + indexed(kSchemeHttp) +
                          literal(kPath, "/pkg.Clock/Ticks") + literal(kAuthority, "h") +
                          literal(kContentType, "application/grpc") + literal("te", "trailers");
  const std::string slow = indexed(kMethodPost) + indexed(kSchemeHttp) +
                           literal(kPath, "/pkg.Clock/Slow") + literal(kAuthority, "h") +
                           literal(kContentType, "application/grpc") +
                           literal("grpc-timeout", "300m");
  const std::string msg = std::string("\0\0\0\0\1x", 6);
  const Result r = run_all_splits({
      C(10, kPreface + settings() + frame(HEADERS, END_HEADERS, 1, req) +
                frame(DATA, END_STREAM, 1, msg) + frame(HEADERS, END_HEADERS, 3, slow) +
                frame(DATA, END_STREAM, 3, msg)),
      S(20, settings() +
                frame(HEADERS, END_HEADERS, 1,
                      indexed(kStatus200) + literal(kContentType, "application/grpc")) +
                frame(DATA, 0, 1, msg)),
      C(30, frame(RST_STREAM, 0, 1, u32(8))),  // CANCEL
      S(31, frame(DATA, 0, 1, msg)),           // already in flight: ignored
      S(40, frame(HEADERS, END_STREAM | END_HEADERS, 3,
                  indexed(kStatus200) + literal(kContentType, "application/grpc") +
                      literal("grpc-status", "4") + literal("grpc-message", "Deadline Exceeded"))),
  });
  ASSERT_EQ(r.exchanges.size(), 2u);
  const Seen& ticks = r.exchanges[0];
  EXPECT_EQ(ticks.path, "/pkg.Clock/Ticks");
  EXPECT_TRUE(ticks.grpc);
  EXPECT_EQ(ticks.outcome, ExchangeOutcome::kResetBeforeResponse);
  EXPECT_EQ(ticks.grpc_status, -1);
  EXPECT_EQ(ticks.status, 0);
  EXPECT_EQ(ticks.response_body_bytes, msg.size()) << "the message before the reset only";
  const Seen& deadline = r.exchanges[1];
  EXPECT_EQ(deadline.path, "/pkg.Clock/Slow");
  EXPECT_EQ(deadline.outcome, ExchangeOutcome::kCompleted);
  EXPECT_EQ(deadline.grpc_status, 4);
}

// A connection that ends inside a frame: only the bytes that came count (fuzz finding: the
// declared length was counted up front, so an exchange had more bytes than were sent).
TEST(Http2Tracker, AConnectionEndingInsideAFrameCountsOnlyWhatArrived) {
  const std::string req = frame(HEADERS, END_HEADERS, 1, get("/upload"));
  const std::string req_data = frame(DATA, 0, 1, std::string(1000, 'u')).substr(0, 9 + 3);
  const std::string resp = frame(HEADERS, END_HEADERS, 1, indexed(kStatus200));
  const std::string resp_data = frame(DATA, 0, 1, std::string(500, 'd')).substr(0, 9 + 4);
  const Result r = run_all_splits({
      C(10, kPreface + settings() + req + req_data),
      S(20, settings() + resp + resp_data),
      Close(30),
  });
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].outcome, ExchangeOutcome::kClosedBeforeResponse);
  EXPECT_EQ(r.exchanges[0].request_bytes, req.size() + req_data.size());
  EXPECT_EQ(r.exchanges[0].request_body_bytes, 3u);
  EXPECT_EQ(r.exchanges[0].response_bytes, resp.size() + resp_data.size());
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 4u);
}

TEST(Http2Tracker, StreamCapCountsTheOverflow) {
  Http2Limits limits;
  limits.max_streams = 2;
  std::string reqs;
  for (uint32_t sid : {1, 3, 5}) {
    reqs += frame(HEADERS, END_STREAM | END_HEADERS, sid, get("/" + std::to_string(sid)));
  }
  std::string resps;
  for (uint32_t sid : {1, 3, 5}) {
    resps += frame(HEADERS, END_STREAM | END_HEADERS, sid, indexed(kStatus200));
  }
  const Result r = run_all_splits<Http2Tracker>(
      {C(10, kPreface + settings() + reqs), S(20, settings() + resps)}, limits);
  EXPECT_EQ(r.untracked, 1u);
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].path, "/1");
  EXPECT_EQ(r.exchanges[1].path, "/3");
}

TEST(Http2Tracker, ManyStreamsStayBounded) {
  Sink sink;
  Http2Tracker t(sink, 1);
  const std::string pre = kPreface + settings();
  t.on_client_bytes(pre, 1);
  t.on_server_bytes(settings(), 1);
  for (uint32_t sid = 1; sid < 200001; sid += 2) {
    const std::string req = frame(HEADERS, END_STREAM | END_HEADERS, sid, get("/s"));
    t.on_client_bytes(req, 2);
    const std::string resp = frame(HEADERS, END_STREAM | END_HEADERS, sid, indexed(kStatus200));
    t.on_server_bytes(resp, 3);
  }
  EXPECT_EQ(sink.exchanges.size(), 100000u);
  EXPECT_EQ(t.open_streams(), 0u);
  EXPECT_EQ(sink.unparsed, 0);
}

TEST(Http2Tracker, InvalidFramingGoesUnparsed) {
  // CONTINUATION without HEADERS; the open stream is reported as a parse error.
  Result r = run_all_splits({
      C(10, kPreface + settings() + frame(HEADERS, END_STREAM | END_HEADERS, 1, get("/ok"))),
      S(20, frame(CONTINUATION, END_HEADERS, 1, indexed(kStatus200))),
      S(30, "anything after is ignored"),
  });
  EXPECT_EQ(r.unparsed, 1);
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].outcome, ExchangeOutcome::kParseError);
  // A bad preface; undecodable HPACK (index 300 does not exist); padding longer than the frame.
  for (const std::string& bad : {std::string("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"),
                                 kPreface + frame(HEADERS, END_HEADERS, 1, indexed(300)),
                                 kPreface + frame(DATA, PADDED, 1,
                                                  "\x09"
                                                  "abc")}) {
    r = run_all_splits({C(10, bad), S(20, settings())});
    EXPECT_EQ(r.unparsed, 1);
    EXPECT_TRUE(r.exchanges.empty());
  }
}

TEST(Http2Tracker, HuffmanAndTableUpdatesFromARealEncoder) {
  // nghttp2's deflater: Huffman strings, dynamic table entries, a shrinking and a growing
  // table. The tracker must decode what a real peer sends.
  nghttp2_hd_deflater* deflater = nullptr;
  ASSERT_EQ(nghttp2_hd_deflate_new(&deflater, 4096), 0);
  auto encode = [&](std::vector<std::pair<std::string, std::string>> fields) {
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : fields) {
      nva.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                     n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(deflater, nva.data(), nva.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(out.data()),
                                            out.size(), nva.data(), nva.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  };
  std::string client = kPreface + settings();
  const std::string server_settings = settings(setting(1, 256)) + settings(setting(1, 16384));
  std::string server;
  for (uint32_t sid = 1; sid <= 41; sid += 2) {
    if (sid == 11) nghttp2_hd_deflate_change_table_size(deflater, 256);
    if (sid == 21) nghttp2_hd_deflate_change_table_size(deflater, 16384);
    const std::string path = "/items/" + std::to_string(sid) + "?q=" + std::string(sid, 'z');
    client += frame(HEADERS, END_STREAM | END_HEADERS, sid,
                    encode({{":method", "GET"},
                            {":scheme", "https"},
                            {":path", path},
                            {":authority", "example.org"},
                            {"user-agent", "test/1.0"},
                            {"x-req", std::to_string(sid)}}));
    server += frame(HEADERS, END_STREAM | END_HEADERS, sid, indexed(kStatus200));
  }
  nghttp2_hd_deflate_del(deflater);
  const Result r = run_all_splits({S(1, server_settings), C(2, client), S(3, server)});
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 21u);
  EXPECT_EQ(r.exchanges[20].path, "/items/41?q=" + std::string(41, 'z'));
}
// ---- choosing the protocol per connection ----------------------------------------------

TEST(ProtocolTracker, PriorKnowledgeIsHttp2) {
  const std::string req = frame(HEADERS, END_STREAM | END_HEADERS, 1, get("/pk"));
  const Result r = run_all_splits<ProtocolTracker>({
      // the server speaks first here, before the client's preface is complete
      S(5, settings()),
      C(10, kPreface + settings() + req),
      S(20, frame(HEADERS, END_STREAM | END_HEADERS, 1, indexed(kStatus200))),
  });
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].protocol, WireProtocol::kHttp2);
  EXPECT_EQ(r.exchanges[0].path, "/pk");
  EXPECT_EQ(r.exchanges[0].request_bytes, req.size());
  EXPECT_EQ(r.unparsed, 0);
}

TEST(ProtocolTracker, Http1StaysHttp1) {
  const Result r = run_all_splits<ProtocolTracker>({
      C(10, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"),
      S(20, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
      C(30, "PUT /q HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
      S(40, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
  });
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].protocol, WireProtocol::kHttp1);
  EXPECT_EQ(r.exchanges[0].method, HTTP_POST);
  EXPECT_EQ(r.exchanges[0].status, 201);
  EXPECT_EQ(r.exchanges[1].path, "/q");
}

TEST(ProtocolTracker, NotHttpAtAllIsUnparsedOnce) {
  const Result r = run_all_splits<ProtocolTracker>({
      S(5, "220 smtp.example ESMTP\r\n"),
      C(10, "EHLO x\r\n"),
  });
  EXPECT_EQ(r.unparsed, 1);
  EXPECT_TRUE(r.exchanges.empty());
}

const std::string kUpgradeRequest =
    "GET /up/1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n";

TEST(ProtocolTracker, H2cUpgradeBecomesStreamOne) {
  const std::string switching =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  const std::string r1h = frame(HEADERS, END_HEADERS, 1, indexed(kStatus200));
  const std::string r1d = frame(DATA, END_STREAM, 1, "hello");
  const std::string req3 = frame(HEADERS, END_STREAM | END_HEADERS, 3, get("/next"));
  const Result r = run_all_splits<ProtocolTracker>({
      C(10, kUpgradeRequest),
      S(20, switching + settings() + r1h),
      C(25, kPreface + settings() + frame(SETTINGS, ACK, 0, "") + req3),
      S(30, r1d + frame(HEADERS, END_STREAM | END_HEADERS, 3, indexed(kStatus404))),
  });
  ASSERT_EQ(r.exchanges.size(), 2u) << r;
  Seen e1 = h2(HTTP_GET, "/up/1", 200);
  e1.request_first_byte = e1.request_headers_done = e1.request_done = 10;
  e1.response_headers_done = 20;
  e1.response_done = 30;
  e1.request_bytes = kUpgradeRequest.size();
  e1.response_bytes = r1h.size() + r1d.size();
  e1.response_body_bytes = 5;
  EXPECT_EQ(r.exchanges[0], e1);
  EXPECT_EQ(r.exchanges[1].path, "/next");
  EXPECT_EQ(r.exchanges[1].status, 404);
  EXPECT_EQ(r.unparsed, 0);
}

TEST(ProtocolTracker, RefusedUpgradeStaysHttp1) {
  const Result r = run_all_splits<ProtocolTracker>({
      C(10, kUpgradeRequest),
      S(20, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
      C(30, "GET /again HTTP/1.1\r\nHost: h\r\n\r\n"),
      S(40, "HTTP/1.1 204 No Content\r\n\r\n"),
  });
  ASSERT_EQ(r.exchanges.size(), 2u) << r;
  EXPECT_EQ(r.exchanges[0].protocol, WireProtocol::kHttp1);
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[1].path, "/again");
  EXPECT_EQ(r.exchanges[1].status, 204);
}

}  // namespace
}  // namespace netprof

namespace netprof {
namespace {

// Idle = between exchanges: the relay's drain may close the connection then without loss.
TEST(Http2Tracker, IdleOnlyBetweenStreamsAndFrames) {
  Sink sink;
  Http2Tracker t(sink, 1);
  EXPECT_FALSE(t.idle());  // before the preface
  const std::string pre = kPreface + settings();
  t.on_client_bytes(pre, 1);
  t.on_server_bytes(settings(), 1);
  EXPECT_TRUE(t.idle());
  const std::string req = frame(HEADERS, END_STREAM | END_HEADERS, 1, get("/i"));
  t.on_client_bytes(std::string_view(req).substr(0, 5), 2);
  EXPECT_FALSE(t.idle());  // in the middle of a frame
  t.on_client_bytes(std::string_view(req).substr(5), 2);
  EXPECT_FALSE(t.idle());  // a stream is open
  const std::string resp = frame(HEADERS, END_STREAM | END_HEADERS, 1, indexed(kStatus200));
  t.on_server_bytes(resp, 3);
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(sink.exchanges.size(), 1u);
}

// While the first client bytes could still be a preface, server bytes are held. A server that
// spoke before them must not become the answer to the request those bytes turn out to be
// (found by the h2 fuzz target: response_done before request_first_byte).
TEST(ProtocolTracker, AServerThatSpokeFirstIsNotTheAnswerToALaterRequest) {
  const Result r = run_all_splits<ProtocolTracker>({
      S(5, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
      C(10, "PRI * HTTP/1.1\r\nHost: h\r\n\r\n"),
      S(20, "HTTP/1.1 204 No Content\r\n\r\n"),
  });
  for (const Seen& e : r.exchanges) {
    if (e.response_done != 0) {
      EXPECT_GE(e.response_done, e.request_first_byte) << e;
    }
    if (e.method == HTTP_PRI) {
      EXPECT_NE(e.status, 200) << e;
    }
  }
}

TEST(ProtocolTracker, IdleBeforeAnyByteNotWithHalfAPreface) {
  Sink sink;
  ProtocolTracker t(sink, 1);
  EXPECT_TRUE(t.idle());
  EXPECT_FALSE(t.ambiguous_framing());
  t.on_client_bytes(std::string_view(kHttp2Preface).substr(0, 3), 1);
  EXPECT_FALSE(t.idle());
}

// Trace ids come from the request's header block (lower-case names, HPACK-decoded); streams
// are numbered by their id, so the n-th stream of the connection is request n.
TEST(Http2Tracker, TraceIdsAndSequenceFromTheRequestBlock) {
  struct Ids final : ExchangeSink {
    void on_exchange(const Exchange& x) override {
      seen.emplace_back(x.sequence, std::string(x.trace_id));
    }
    void on_unparsed_connection(uint32_t) override {}
    std::vector<std::pair<uint32_t, std::string>> seen;
  } sink;
  Http2Tracker t(sink, 0);
  const std::string b1 = get("/a") + literal("traceparent",
                                             "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                             "00f067aa0ba902b7-01") +
                         literal("x-request-id", "other");
  const std::string b3 = get("/b") + literal("x-request-id", "req-3");
  t.on_client_bytes(kPreface + settings() + frame(HEADERS, END_STREAM | END_HEADERS, 1, b1) +
                        frame(HEADERS, END_STREAM | END_HEADERS, 3, b3),
                    10);
  t.on_server_bytes(settings() + frame(HEADERS, END_STREAM | END_HEADERS, 3, indexed(kStatus200)) +
                        frame(HEADERS, END_STREAM | END_HEADERS, 1, indexed(kStatus200)),
                    20);
  ASSERT_EQ(sink.seen.size(), 2u);
  EXPECT_EQ(sink.seen[0], std::make_pair(2u, std::string("req-3")));
  EXPECT_EQ(sink.seen[1], std::make_pair(1u, std::string("4bf92f3577b34da6a3ce929d0e0e4736")));
}

}  // namespace
}  // namespace netprof
