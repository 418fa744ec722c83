// Randomized property test: a generator writes whole HTTP/1.1 conversations (keep-alive,
// pipelining, chunked and sized bodies, HEAD, 1xx, 204/304, responses ended by close), feeds
// them to the tracker in random chunks and realistic interleavings, and checks every field of
// every exchange against what it knows it generated. Fixed seed: failures reproduce.
#include <gtest/gtest.h>
#include <llhttp.h>

#include <algorithm>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "http/tracker.h"
#include "tracker_harness.h"

namespace netprof::testing {
namespace {

struct Generated {
  uint8_t method = HTTP_GET;
  std::string path;
  std::string request;
  size_t request_headers_end = 0;  // offset just past the request's header block
  uint64_t request_body = 0;
  std::string response;            // interim responses + final response
  size_t final_headers_end = 0;    // offset just past the final response's header block
  uint64_t response_body = 0;
  uint16_t status = 0;
  std::string reason;
  bool ends_by_close = false;      // the final response is delimited by the server's EOF
};

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  size_t pick(size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng_); }
  bool chance(int percent) { return pick(1, 100) <= static_cast<size_t>(percent); }

  std::string body(size_t n) {
    std::string b(n, '\0');
    for (char& c : b) c = static_cast<char>('a' + pick(0, 25));
    return b;
  }

  // Chunked encoding of `data`, with chunk extensions and trailers now and then.
  std::string chunked(const std::string& data) {
    std::string out;
    size_t at = 0;
    while (at < data.size()) {
      const size_t n = std::min(data.size() - at, pick(1, 64));
      char hex[20];
      std::snprintf(hex, sizeof hex, "%zx", n);
      out += hex;
      if (chance(20)) out += ";ext=" + std::to_string(n);
      out += "\r\n" + data.substr(at, n) + "\r\n";
      at += n;
    }
    out += "0\r\n";
    if (chance(30)) out += "X-Trailer: t\r\n";
    return out + "\r\n";
  }

  Generated exchange(bool last) {
    Generated g;
    static constexpr uint8_t kMethods[] = {HTTP_GET, HTTP_GET, HTTP_POST, HTTP_PUT, HTTP_DELETE,
                                           HTTP_HEAD};
    g.method = kMethods[pick(0, std::size(kMethods) - 1)];
    g.path = "/r" + std::to_string(pick(0, 999));
    for (size_t i = pick(0, 3); i > 0; --i) g.path += "/" + body(pick(1, 12));
    if (chance(30)) g.path += "?q=" + body(pick(0, 20));

    g.request = std::string(llhttp_method_name(static_cast<llhttp_method_t>(g.method))) + " " +
                g.path + " HTTP/1.1\r\nHost: svc\r\n";
    std::string req_body;
    bool req_chunked = false;
    if (g.method == HTTP_POST || g.method == HTTP_PUT) {
      req_body = body(pick(0, 300));
      req_chunked = chance(40);
      g.request += req_chunked ? "Transfer-Encoding: chunked\r\n"
                               : "Content-Length: " + std::to_string(req_body.size()) + "\r\n";
      if (chance(20)) g.request += "Expect: 100-continue\r\n";
    }
    g.request += "\r\n";
    g.request_headers_end = g.request.size();
    g.request += req_chunked ? chunked(req_body) : req_body;
    g.request_body = req_body.size();

    if (chance(15)) g.response += "HTTP/1.1 100 Continue\r\n\r\n";
    if (chance(10)) g.response += "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n";
    static constexpr uint16_t kStatuses[] = {200, 200, 201, 204, 301, 304, 404, 500};
    g.status = kStatuses[pick(0, std::size(kStatuses) - 1)];
    g.reason = g.status == 200 ? "OK" : "Reason " + std::to_string(g.status);
    std::string resp = "HTTP/1.1 " + std::to_string(g.status) + " " + g.reason + "\r\n";
    const bool bodiless = g.method == HTTP_HEAD || g.status == 204 || g.status == 304;
    const std::string resp_body = bodiless ? std::string() : body(pick(0, 400));
    g.ends_by_close = last && !bodiless && chance(30);
    if (g.ends_by_close) {
      resp += "Connection: close\r\n\r\n";
    } else if (g.status == 204) {
      resp += "\r\n";
    } else if (!bodiless && chance(40)) {
      resp += "Transfer-Encoding: chunked\r\n\r\n";
    } else {
      // HEAD and 304 announce the size of a body they do not carry.
      resp += "Content-Length: " + std::to_string(bodiless ? pick(0, 5000) : resp_body.size()) +
              "\r\n\r\n";
    }
    g.final_headers_end = g.response.size() + resp.size();
    const bool chunked_resp = resp.find("chunked") != std::string::npos;
    g.response += resp + (chunked_resp ? chunked(resp_body) : resp_body);
    g.response_body = resp_body.size();
    return g;
  }

  // Cuts `total` bytes into random pieces.
  std::vector<size_t> cuts(size_t total) {
    std::vector<size_t> ends;
    size_t at = 0;
    while (at < total) {
      at = std::min(total, at + (chance(20) ? pick(1, 3) : pick(1, 200)));
      ends.push_back(at);
    }
    return ends;
  }

 private:
  std::mt19937 rng_;
};

// Time of the chunk that carried byte `offset` of a direction's stream.
MonoNanos time_of(const std::vector<size_t>& ends, const std::vector<MonoNanos>& times,
                  size_t offset) {
  const auto it = std::upper_bound(ends.begin(), ends.end(), offset);
  return times[static_cast<size_t>(it - ends.begin())];
}

TEST(HttpTrackerProperty, RandomConversationsMatchGroundTruth) {
  Generator gen(20240611);
  for (int iteration = 0; iteration < 400; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    const size_t count = gen.pick(1, 8);
    // How the connection ends: answered and closed, last request unanswered, or reset.
    const size_t ending = gen.pick(0, 2);
    const size_t answered = ending == 0 ? count : count - 1;
    std::vector<Generated> ex;
    std::string client_stream, server_stream;
    std::vector<size_t> req_start, resp_end;  // per exchange, offsets in each stream
    for (size_t i = 0; i < count; ++i) {
      ex.push_back(gen.exchange(/*last=*/i + 1 == answered && ending == 0));
      req_start.push_back(client_stream.size());
      client_stream += ex[i].request;
      if (i < answered) {
        server_stream += ex[i].response;
        resp_end.push_back(server_stream.size());
      }
    }

    // Interleave: a server chunk may go once every request it answers was fully sent.
    const std::vector<size_t> client_ends = gen.cuts(client_stream.size());
    const std::vector<size_t> server_ends = gen.cuts(server_stream.size());
    std::vector<MonoNanos> client_times, server_times;
    RecordingSink sink;
    HttpTracker tracker(sink, 3);
    MonoNanos clock = 100;
    size_t ci = 0, si = 0;
    while (ci < client_ends.size() || si < server_ends.size()) {
      const size_t client_sent = ci == 0 ? 0 : client_ends[ci - 1];
      bool server_ready = false;
      if (si < server_ends.size()) {
        const size_t last_byte = server_ends[si] - 1;
        const size_t answers = static_cast<size_t>(
            std::upper_bound(resp_end.begin(), resp_end.end(), last_byte) - resp_end.begin());
        const size_t needed = answers + 1 < count ? req_start[answers + 1] : client_stream.size();
        server_ready = client_sent >= needed;
      }
      clock += static_cast<MonoNanos>(gen.pick(1, 1000));
      if (server_ready && (ci == client_ends.size() || gen.chance(50))) {
        const size_t from = si == 0 ? 0 : server_ends[si - 1];
        tracker.on_server_bytes(std::span(server_stream).subspan(from, server_ends[si] - from),
                                clock);
        server_times.push_back(clock);
        ++si;
      } else {
        ASSERT_LT(ci, client_ends.size());
        tracker.on_client_bytes(std::span(client_stream).subspan(client_sent,
                                                                 client_ends[ci] - client_sent),
                                clock);
        client_times.push_back(clock);
        ++ci;
      }
    }
    const MonoNanos end_time = clock + 1;
    const bool by_close = answered > 0 && ex[answered - 1].ends_by_close;
    if (by_close) tracker.on_server_eof(end_time);
    tracker.on_connection_closed(end_time + 1, ending == 2);

    EXPECT_EQ(sink.unparsed, 0);
    EXPECT_EQ(tracker.mode(), TrackerMode::kHttp);
    ASSERT_EQ(sink.exchanges.size(), count);
    size_t server_offset = 0;
    for (size_t i = 0; i < count; ++i) {
      SCOPED_TRACE("exchange " + std::to_string(i));
      const Generated& g = ex[i];
      const SeenExchange& s = sink.exchanges[i];
      const size_t start = req_start[i];
      EXPECT_EQ(s.method, g.method);
      EXPECT_EQ(s.path, g.path);
      EXPECT_EQ(s.request_bytes, g.request.size());
      EXPECT_EQ(s.request_body_bytes, g.request_body);
      EXPECT_EQ(s.request_first_byte, time_of(client_ends, client_times, start));
      EXPECT_EQ(s.request_headers_done,
                time_of(client_ends, client_times, start + g.request_headers_end - 1));
      EXPECT_EQ(s.request_done, time_of(client_ends, client_times, start + g.request.size() - 1));
      if (i < answered) {
        EXPECT_EQ(s.outcome, ExchangeOutcome::kCompleted);
        EXPECT_EQ(s.status, g.status);
        EXPECT_EQ(s.reason, g.reason);
        EXPECT_EQ(s.response_bytes, g.response.size());
        EXPECT_EQ(s.response_body_bytes, g.response_body);
        EXPECT_EQ(s.response_headers_done,
                  time_of(server_ends, server_times, server_offset + g.final_headers_end - 1));
        EXPECT_EQ(s.response_done,
                  g.ends_by_close
                      ? end_time
                      : time_of(server_ends, server_times, server_offset + g.response.size() - 1));
        server_offset += g.response.size();
      } else {
        EXPECT_EQ(s.outcome, ending == 2 ? ExchangeOutcome::kResetBeforeResponse
                                         : ExchangeOutcome::kClosedBeforeResponse);
        EXPECT_EQ(s.status, 0);
        EXPECT_EQ(s.response_bytes, 0u);
      }
      EXPECT_LE(s.request_first_byte, s.request_headers_done);
      EXPECT_LE(s.request_headers_done, s.request_done);
    }
    if (HasFailure()) return;  // one reproducible failure is enough to read
  }
}

// Random bytes must never crash the tracker, never make it emit more than it could have seen,
// and count an unparsed connection at most once.
TEST(HttpTrackerProperty, ArbitraryBytesNeverBreakIt) {
  Generator gen(7);
  for (int iteration = 0; iteration < 2000; ++iteration) {
    RecordingSink sink;
    TrackerLimits limits;
    limits.max_path_bytes = gen.pick(1, 64);
    limits.max_pipelined = gen.pick(1, 8);
    limits.max_held_bytes = gen.pick(0, 256);
    HttpTracker tracker(sink, 1, limits);
    static const std::string kAlphabet[] = {
        "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 101 S\r\n", "HTTP/1.1 100 C\r\n",
        "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n", "Upgrade: x\r\n",
        "Connection: upgrade\r\n", "CONNECT h:1 HTTP/1.1\r\n", "HEAD /h HTTP/1.0\r\n", "\r\n",
        "3\r\nabc\r\n", "0\r\n\r\n", "abc", std::string("\x00\xff\x16", 3), " "};
    MonoNanos now = 0;
    for (size_t steps = gen.pick(1, 30); steps > 0; --steps) {
      std::string chunk;
      for (size_t n = gen.pick(1, 4); n > 0; --n) {
        chunk += kAlphabet[gen.pick(0, std::size(kAlphabet) - 1)];
      }
      ++now;
      switch (gen.pick(0, 9)) {
        case 0: tracker.on_server_eof(now); break;
        case 1: tracker.on_client_eof(now); break;
        case 2: case 3: case 4: tracker.on_server_bytes(chunk, now); break;
        default: tracker.on_client_bytes(chunk, now); break;
      }
      EXPECT_LE(tracker.pending_requests(), limits.max_pipelined);
    }
    tracker.on_connection_closed(now + 1, gen.chance(50));
    EXPECT_LE(sink.unparsed, 1);
    EXPECT_EQ(tracker.pending_requests(), 0u);
    EXPECT_EQ(sink.unparsed == 1, tracker.mode() == TrackerMode::kUnparsed);
    for (const SeenExchange& e : sink.exchanges) {
      EXPECT_LE(e.path.size(), limits.max_path_bytes);
      if (e.outcome == ExchangeOutcome::kCompleted) {
        EXPECT_NE(e.status, 0);
      }
    }
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace netprof::testing
