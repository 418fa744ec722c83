// HttpTracker on literal byte streams. Every script is also replayed split at every byte
// boundary and byte by byte (run_all_splits), and must give the same result each time.
#include <gtest/gtest.h>
#include <llhttp.h>

#include <string>

#include "http/tracker.h"
#include "tracker_harness.h"

namespace netprof::testing {
namespace {

using Outcome = ExchangeOutcome;

const std::string kGetA = "GET /a?x=1 HTTP/1.1\r\nHost: svc\r\n\r\n";
const std::string kOk5 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: svc\r\nUser-Agent: t\r\n\r\n";
}
std::string ok(const std::string& body, int status = 200, const std::string& reason = "OK") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(HttpTracker, SimpleGet) {
  const RunResult r = run_all_splits({client(10, kGetA), server(20, kOk5), closed(30)});
  EXPECT_EQ(r.unparsed, 0);
  EXPECT_EQ(r.mode, TrackerMode::kHttp);
  EXPECT_EQ(r.pending, 0u);
  ASSERT_EQ(r.exchanges.size(), 1u);
  const SeenExchange& e = r.exchanges[0];
  EXPECT_EQ(e.method, HTTP_GET);
  EXPECT_EQ(e.path, "/a?x=1");
  EXPECT_FALSE(e.path_truncated);
  EXPECT_EQ(e.http_major, 1);
  EXPECT_EQ(e.http_minor, 1);
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.reason, "OK");
  EXPECT_EQ(e.request_first_byte, 10);
  EXPECT_EQ(e.request_headers_done, 10);
  EXPECT_EQ(e.request_done, 10);
  EXPECT_EQ(e.response_headers_done, 20);
  EXPECT_EQ(e.response_done, 20);
  EXPECT_EQ(e.request_bytes, kGetA.size());
  EXPECT_EQ(e.request_body_bytes, 0u);
  EXPECT_EQ(e.response_bytes, kOk5.size());
  EXPECT_EQ(e.response_body_bytes, 5u);
  EXPECT_EQ(e.outcome, Outcome::kCompleted);
}

TEST(HttpTracker, TimestampsFollowTheChunksThatCarriedEachPart) {
  const std::string head = "POST /up HTTP/1.1\r\nContent-Length: 6\r\n\r\n";
  const RunResult r = run_all_splits({client(10, "PO"), client(11, head.substr(2)),
                                      client(12, "abc"), client(13, "def"),
                                      server(20, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n"),
                                      server(21, "ok")});
  ASSERT_EQ(r.exchanges.size(), 1u);
  const SeenExchange& e = r.exchanges[0];
  EXPECT_EQ(e.method, HTTP_POST);
  EXPECT_EQ(e.request_first_byte, 10);
  EXPECT_EQ(e.request_headers_done, 11);
  EXPECT_EQ(e.request_done, 13);
  EXPECT_EQ(e.response_headers_done, 20);
  EXPECT_EQ(e.response_done, 21);
  EXPECT_EQ(e.request_bytes, head.size() + 6);
  EXPECT_EQ(e.request_body_bytes, 6u);
  EXPECT_EQ(e.status, 201);
  EXPECT_EQ(e.reason, "Created");
  EXPECT_EQ(e.response_body_bytes, 2u);
}

TEST(HttpTracker, KeepAliveThreeExchanges) {
  const std::string post = "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz";
  const RunResult r = run_all_splits({client(10, get("/one")), server(11, ok("1")),
                                      client(20, post), server(21, ok("22", 404, "Not Found")),
                                      client(30, get("/three")), server(31, ok("333", 500, "Oops")),
                                      closed(40)});
  ASSERT_EQ(r.exchanges.size(), 3u);
  EXPECT_EQ(r.exchanges[0].path, "/one");
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 1u);
  EXPECT_EQ(r.exchanges[1].path, "/b");
  EXPECT_EQ(r.exchanges[1].method, HTTP_POST);
  EXPECT_EQ(r.exchanges[1].request_bytes, post.size());
  EXPECT_EQ(r.exchanges[1].request_body_bytes, 3u);
  EXPECT_EQ(r.exchanges[1].status, 404);
  EXPECT_EQ(r.exchanges[1].reason, "Not Found");
  EXPECT_EQ(r.exchanges[2].path, "/three");
  EXPECT_EQ(r.exchanges[2].status, 500);
  EXPECT_EQ(r.exchanges[2].request_first_byte, 30);
  EXPECT_EQ(r.exchanges[2].response_done, 31);
  for (const SeenExchange& e : r.exchanges) EXPECT_EQ(e.outcome, Outcome::kCompleted);
}

TEST(HttpTracker, PipelinedRequestsPairWithResponsesInOrder) {
  const std::string reqs = get("/p1") + get("/p2") + get("/p3");
  const std::string resps = ok("a", 200) + ok("bb", 201, "Created") + ok("ccc", 404, "NF");
  const RunResult r = run_all_splits({client(10, reqs), server(20, resps)});
  ASSERT_EQ(r.exchanges.size(), 3u);
  const char* paths[] = {"/p1", "/p2", "/p3"};
  const uint16_t statuses[] = {200, 201, 404};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.exchanges[i].path, paths[i]);
    EXPECT_EQ(r.exchanges[i].status, statuses[i]);
    EXPECT_EQ(r.exchanges[i].response_body_bytes, i + 1);
    EXPECT_EQ(r.exchanges[i].request_bytes, get(paths[i]).size());
  }
  EXPECT_EQ(r.pending, 0u);
}

TEST(HttpTracker, PendingRequestsCountsUnansweredOnes) {
  RecordingSink sink;
  HttpTracker t(sink, 1);
  const std::string reqs = get("/p1") + get("/p2") + get("/p3");
  t.on_client_bytes(reqs, 1);
  EXPECT_EQ(t.pending_requests(), 3u);
  const std::string resp = ok("a");
  t.on_server_bytes(resp, 2);
  EXPECT_EQ(t.pending_requests(), 2u);
  ASSERT_EQ(sink.exchanges.size(), 1u);
  EXPECT_EQ(sink.exchanges[0].path, "/p1");
}

TEST(HttpTracker, ChunkedBodiesWithExtensionsAndTrailers) {
  const std::string req =
      "POST /chunky HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n";
  const std::string resp =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "a;x\r\n0123456789\r\n3\r\nabc\r\n0;last\r\nX-T: 1\r\nX-U: 2\r\n\r\n";
  const RunResult r = run_all_splits({client(10, req), server(20, resp), client(30, get("/next")),
                                      server(40, ok("n"))});
  ASSERT_EQ(r.exchanges.size(), 2u);
  const SeenExchange& e = r.exchanges[0];
  EXPECT_EQ(e.request_body_bytes, 11u);
  EXPECT_EQ(e.request_bytes, req.size());
  EXPECT_EQ(e.response_body_bytes, 13u);
  EXPECT_EQ(e.response_bytes, resp.size());
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(r.exchanges[1].path, "/next");
}

// RFC 9112 7.1.1: any number of extensions, with or without values; llhttp 8.1 rejected one
// following an extension with a value (see cmake/FindLlhttp.cmake).
TEST(HttpTracker, ChunkExtensionsWithValuesInARow) {
  const std::string req =
      "POST /ext HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;a=b;c=d\r\nhello\r\n3;x=\"q;r\";y;z=1\r\nabc\r\n0;e=f;g=h\r\n\r\n";
  const std::string resp =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;a=b;c=d\r\nwxyz\r\n0\r\n\r\n";
  const RunResult r = run_all_splits(
      {client(10, req), server(20, resp), client(30, get("/next")), server(40, ok("n"))});
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kCompleted);
  EXPECT_EQ(r.exchanges[0].request_body_bytes, 8u);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 4u);
  EXPECT_EQ(r.exchanges[0].response_bytes, resp.size());
  EXPECT_EQ(r.exchanges[1].path, "/next");
}

// RFC 9110 8.6: the same Content-Length twice is one Content-Length.
TEST(HttpTracker, RepeatedIdenticalContentLengthIsAccepted) {
  const std::string req = "POST /dup HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc";
  const std::string resp =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nCONTENT-LENGTH:5\r\n\r\nhello";
  const RunResult r = run_all_splits(
      {client(10, req), server(20, resp), client(30, get("/next")), server(40, ok("n"))});
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kCompleted);
  EXPECT_EQ(r.exchanges[0].request_body_bytes, 3u);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 5u);
  EXPECT_EQ(r.exchanges[1].status, 200);
  EXPECT_EQ(r.exchanges[1].path, "/next");
}

// Where a message's length can be read two ways, a peer and netprof may disagree on where the
// next message starts (request smuggling): not followed, and counted as its own anomaly.
TEST(HttpTracker, AmbiguousLengthsAreUnparsedAndFlagged) {
  const std::string cases[] = {
      "POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "POST /x HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabcd",
  };
  for (const std::string& req : cases) {
    RecordingSink sink;
    HttpTracker t(sink, 1);
    t.on_client_bytes(get("/first"), 1);
    t.on_server_bytes(ok("1"), 2);
    EXPECT_FALSE(t.ambiguous_framing());
    t.on_client_bytes(req, 3);
    EXPECT_EQ(t.mode(), TrackerMode::kUnparsed) << req;
    EXPECT_TRUE(t.ambiguous_framing()) << req;
    EXPECT_EQ(sink.unparsed, 1);
    ASSERT_EQ(sink.exchanges.size(), 1u);
    EXPECT_EQ(sink.exchanges[0].status, 200);
  }
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
  RecordingSink sink;
  HttpTracker t(sink, 1);
  t.on_client_bytes(get("/a"), 1);
  t.on_server_bytes(resp, 2);
  EXPECT_TRUE(t.ambiguous_framing());
  ASSERT_EQ(sink.exchanges.size(), 1u);
  EXPECT_EQ(sink.exchanges[0].outcome, Outcome::kParseError);

  RecordingSink plain_sink;  // garbage is unparsed, but not an ambiguity
  HttpTracker plain(plain_sink, 1);
  plain.on_client_bytes(std::string("\x16\x03\x01garbage"), 1);
  EXPECT_EQ(plain.mode(), TrackerMode::kUnparsed);
  EXPECT_FALSE(plain.ambiguous_framing());
}

// RFC 9110 15: status codes are 100-599. `000` or `999` answers nothing: an error with status 0,
// while the connection stays in step (the response is framed by its headers as usual).
TEST(HttpTracker, StatusOutsideTheValidRangeIsAnError) {
  const std::string zero = "HTTP/1.1 000 Zero\r\nContent-Length: 4\r\n\r\nbody";
  const std::string nines = "HTTP/1.1 999 Nine\r\nContent-Length: 2\r\n\r\nhi";
  const RunResult r =
      run_all_splits({client(10, get("/z")), server(20, zero), client(30, get("/n")),
                      server(40, nines), client(50, get("/ok")), server(60, ok("fine"))});
  EXPECT_EQ(r.unparsed, 0);
  EXPECT_EQ(r.mode, TrackerMode::kHttp);
  ASSERT_EQ(r.exchanges.size(), 3u);
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kParseError);
  EXPECT_EQ(r.exchanges[0].status, 0);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 4u);
  EXPECT_EQ(r.exchanges[1].outcome, Outcome::kParseError);
  EXPECT_EQ(r.exchanges[1].status, 0);
  EXPECT_EQ(r.exchanges[2].outcome, Outcome::kCompleted);
  EXPECT_EQ(r.exchanges[2].status, 200);
  EXPECT_EQ(r.exchanges[2].response_body_bytes, 4u);
}

TEST(HttpTracker, HeadResponseHasNoBodyDespiteContentLength) {
  const std::string head = "HEAD /big HTTP/1.1\r\nHost: svc\r\n\r\n";
  const std::string head_resp = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
  // A second exchange right behind proves the HEAD response did not swallow its bytes.
  const RunResult r = run_all_splits(
      {client(10, head + get("/after")), server(20, head_resp + ok("xyz"))});
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].method, HTTP_HEAD);
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 0u);
  EXPECT_EQ(r.exchanges[0].response_bytes, head_resp.size());
  EXPECT_EQ(r.exchanges[1].path, "/after");
  EXPECT_EQ(r.exchanges[1].response_body_bytes, 3u);
  EXPECT_EQ(r.unparsed, 0);
}

TEST(HttpTracker, NoContentAndNotModifiedHaveNoBody) {
  const std::string r204 = "HTTP/1.1 204 No Content\r\n\r\n";
  // 304 may carry the Content-Length of the representation it stands for; no body follows.
  const std::string r304 = "HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\nETag: \"x\"\r\n\r\n";
  const RunResult r = run_all_splits({client(10, get("/del")), server(11, r204),
                                      client(20, get("/cached")), server(21, r304),
                                      client(30, get("/last")), server(31, ok("fin"))});
  ASSERT_EQ(r.exchanges.size(), 3u);
  EXPECT_EQ(r.exchanges[0].status, 204);
  EXPECT_EQ(r.exchanges[0].reason, "No Content");
  EXPECT_EQ(r.exchanges[0].response_done, 11);
  EXPECT_EQ(r.exchanges[1].status, 304);
  EXPECT_EQ(r.exchanges[1].response_body_bytes, 0u);
  EXPECT_EQ(r.exchanges[1].response_bytes, r304.size());
  EXPECT_EQ(r.exchanges[2].status, 200);
  EXPECT_EQ(r.exchanges[2].response_body_bytes, 3u);
}

TEST(HttpTracker, ExpectContinueInterimResponseDoesNotCompleteTheExchange) {
  const std::string head =
      "PUT /file HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
  const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
  const std::string fin = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
  const RunResult r = run_all_splits(
      {client(10, head), server(20, cont), client(30, "data"), server(40, fin)});
  ASSERT_EQ(r.exchanges.size(), 1u);
  const SeenExchange& e = r.exchanges[0];
  EXPECT_EQ(e.method, HTTP_PUT);
  EXPECT_EQ(e.status, 201);
  EXPECT_EQ(e.reason, "Created");
  EXPECT_EQ(e.request_headers_done, 10);
  EXPECT_EQ(e.request_done, 30);
  EXPECT_EQ(e.response_headers_done, 40);
  EXPECT_EQ(e.response_done, 40);
  EXPECT_EQ(e.request_body_bytes, 4u);
  EXPECT_EQ(e.response_bytes, cont.size() + fin.size());
}

TEST(HttpTracker, EarlyHintsThenFinalResponse) {
  const std::string hints = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n";
  const RunResult r = run_all_splits(
      {client(10, get("/page")), server(20, hints), server(25, ok("<html>"))});
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].reason, "OK");
  EXPECT_EQ(r.exchanges[0].response_headers_done, 25);
  EXPECT_EQ(r.exchanges[0].response_bytes, hints.size() + ok("<html>").size());
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 6u);
}

TEST(HttpTracker, InterimOnlyThenCloseIsNotAResponse) {
  const RunResult r = run_all_splits(
      {client(10, get("/x")), server(20, "HTTP/1.1 100 Continue\r\n\r\n"), closed(30)});
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kClosedBeforeResponse);
  EXPECT_EQ(r.exchanges[0].status, 0);
  EXPECT_EQ(r.exchanges[0].response_headers_done, 0);
}

TEST(HttpTracker, Http10ResponseEndsWhenServerCloses) {
  const std::string req = "GET /old HTTP/1.0\r\n\r\n";
  const std::string resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
  const RunResult r = run_all_splits(
      {client(10, req), server(20, resp), server(21, "!"), server_eof(30), closed(31)});
  ASSERT_EQ(r.exchanges.size(), 1u);
  const SeenExchange& e = r.exchanges[0];
  EXPECT_EQ(e.http_major, 1);
  EXPECT_EQ(e.http_minor, 0);
  EXPECT_EQ(e.outcome, Outcome::kCompleted);
  EXPECT_EQ(e.response_done, 30);
  EXPECT_EQ(e.response_body_bytes, 14u);
  EXPECT_EQ(e.response_bytes, resp.size() + 1);
}

TEST(HttpTracker, ResponseUntilCloseCompletesOnPlainCloseButNotOnReset) {
  const std::string resp = "HTTP/1.0 200 OK\r\n\r\nbody";
  const RunResult fin = run_all_splits({client(10, get("/f")), server(20, resp), closed(30)});
  ASSERT_EQ(fin.exchanges.size(), 1u);
  EXPECT_EQ(fin.exchanges[0].outcome, Outcome::kCompleted);
  EXPECT_EQ(fin.exchanges[0].response_done, 30);
  EXPECT_EQ(fin.exchanges[0].response_body_bytes, 4u);

  const RunResult rst = run_all_splits({client(10, get("/f")), server(20, resp), reset(30)});
  ASSERT_EQ(rst.exchanges.size(), 1u);
  EXPECT_EQ(rst.exchanges[0].outcome, Outcome::kResetBeforeResponse);
  EXPECT_EQ(rst.exchanges[0].response_done, 0);
  EXPECT_EQ(rst.exchanges[0].response_headers_done, 20);
  EXPECT_EQ(rst.exchanges[0].response_body_bytes, 4u);
  EXPECT_EQ(rst.exchanges[0].response_bytes, resp.size());
}

TEST(HttpTracker, ConnectionCloseExchange) {
  const std::string req = "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n";
  const std::string resp = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
  const RunResult r = run_all_splits(
      {client(10, req), server(20, resp), server_eof(21), client_eof(22), closed(23)});
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kCompleted);
  EXPECT_EQ(r.exchanges[0].response_done, 20);
  EXPECT_EQ(r.unparsed, 0);
  EXPECT_EQ(r.pending, 0u);
}

TEST(HttpTracker, WebSocketUpgradeGoesPassthrough) {
  const std::string req =
      "GET /ws HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  const std::string resp =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  const std::string frame_in("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
  const std::string frame_out("\x81\x05Hello\x00\xff\r\n\r\nHTTP/1.1 200", 19);
  const RunResult r = run_all_splits({client(10, req), server(20, resp + frame_out),
                                      client(30, frame_in), server(40, frame_out), closed(50)});
  EXPECT_EQ(r.mode, TrackerMode::kPassthrough);
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].status, 101);
  EXPECT_EQ(r.exchanges[0].reason, "Switching Protocols");
  EXPECT_EQ(r.exchanges[0].path, "/ws");
  EXPECT_EQ(r.exchanges[0].response_done, 20);
  EXPECT_EQ(r.exchanges[0].response_bytes, resp.size());
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kCompleted);
}

TEST(HttpTracker, RefusedUpgradeKeepsParsingHeldBytes) {
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  const std::string refused = "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n";
  // The client pipelines a plain request behind the upgrade; it must be held, then parsed.
  const RunResult r = run_all_splits({client(10, upgrade + get("/next")), server(20, refused),
                                      server(30, ok("after")), client(40, get("/third")),
                                      server(50, ok("3"))});
  EXPECT_EQ(r.mode, TrackerMode::kHttp);
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 3u);
  EXPECT_EQ(r.exchanges[0].status, 426);
  EXPECT_EQ(r.exchanges[0].path, "/ws");
  EXPECT_EQ(r.exchanges[1].path, "/next");
  EXPECT_EQ(r.exchanges[1].request_first_byte, 10);
  EXPECT_EQ(r.exchanges[1].request_bytes, get("/next").size());
  EXPECT_EQ(r.exchanges[1].status, 200);
  EXPECT_EQ(r.exchanges[1].response_body_bytes, 5u);
  EXPECT_EQ(r.exchanges[2].path, "/third");
}

TEST(HttpTracker, UpgradeIgnoredWithPlain200ThenFurtherRequest) {
  const std::string upgrade = "GET /h2c HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
  const RunResult r = run_all_splits({client(10, upgrade), server(20, ok("plain")),
                                      client(30, get("/again")), server(40, ok("x"))});
  EXPECT_EQ(r.mode, TrackerMode::kHttp);
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 5u);
  EXPECT_EQ(r.exchanges[1].path, "/again");
  EXPECT_EQ(r.exchanges[1].request_first_byte, 30);
}

// A WebSocket client may send more than the hold bound before the 101 arrives: the upgrade
// is still paired with its answer; only a refused upgrade leaves bytes we could not follow.
TEST(HttpTracker, HeldBytesPastTheBoundStillPairTheUpgrade) {
  TrackerLimits limits;
  limits.max_held_bytes = 64;
  const std::string upgrade = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  const std::string switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
  const RunResult accepted = run_all_splits(
      {client(10, upgrade), client(20, std::string(100, 'x')), server(30, switching),
       server(40, "frames"), client(50, "more frames"), closed(60)},
      limits);
  EXPECT_EQ(accepted.mode, TrackerMode::kPassthrough);
  EXPECT_EQ(accepted.unparsed, 0);
  ASSERT_EQ(accepted.exchanges.size(), 1u);
  EXPECT_EQ(accepted.exchanges[0].outcome, Outcome::kCompleted);
  EXPECT_EQ(accepted.exchanges[0].status, 101);
  EXPECT_EQ(accepted.exchanges[0].path, "/ws");

  // Refused: the held bytes were HTTP after all, but they are gone. The refusal itself is
  // paired; the connection is then counted unparsed, and nothing is invented.
  const RunResult refused = run_all_splits(
      {client(10, upgrade), client(20, std::string(100, 'x')), server(30, ok("no")),
       client(40, get("/later")), server(50, ok("later")), closed(60)},
      limits);
  EXPECT_EQ(refused.mode, TrackerMode::kUnparsed);
  EXPECT_EQ(refused.unparsed, 1);
  ASSERT_EQ(refused.exchanges.size(), 1u);
  EXPECT_EQ(refused.exchanges[0].outcome, Outcome::kCompleted);
  EXPECT_EQ(refused.exchanges[0].status, 200);

  const RunResult within = run_all_splits(
      {client(10, upgrade), client(20, std::string(16, 'x')), closed(30)}, limits);
  EXPECT_EQ(within.unparsed, 0);
  ASSERT_EQ(within.exchanges.size(), 1u);
  EXPECT_EQ(within.exchanges[0].outcome, Outcome::kClosedBeforeResponse);
}

TEST(HttpTracker, ConnectTunnelGoesPassthrough) {
  const std::string req = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
  const std::string resp = "HTTP/1.1 200 Connection Established\r\n\r\n";
  const std::string hello("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11);
  const std::string server_hello("\x16\x03\x03\x00\x5d\x02\x00\x00\x59\x03\x03", 11);
  const RunResult r = run_all_splits({client(10, req), server(20, resp), client(30, hello),
                                      server(40, server_hello), closed(50)});
  EXPECT_EQ(r.mode, TrackerMode::kPassthrough);
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].method, HTTP_CONNECT);
  EXPECT_EQ(r.exchanges[0].path, "example.com:443");
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].response_bytes, resp.size());
}

TEST(HttpTracker, ConnectRefusedKeepsParsing) {
  const std::string req = "CONNECT example.com:443 HTTP/1.1\r\n\r\n";
  const std::string resp = ok("auth please", 407, "Proxy Authentication Required");
  const RunResult r = run_all_splits(
      {client(10, req), server(20, resp), client(30, get("/plain")), server(40, ok("y"))});
  EXPECT_EQ(r.mode, TrackerMode::kHttp);
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].status, 407);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 11u);
  EXPECT_EQ(r.exchanges[1].path, "/plain");
}

TEST(HttpTracker, TlsClientHelloIsUnparsed) {
  const std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x00\x00", 14);
  const RunResult r = run_all_splits(
      {client(10, hello), server(20, std::string("\x16\x03\x03\x00\x7a", 5)), client(30, hello),
       closed(40)});
  EXPECT_EQ(r.mode, TrackerMode::kUnparsed);
  EXPECT_EQ(r.unparsed, 1);
  EXPECT_TRUE(r.exchanges.empty());
}

TEST(HttpTracker, SshBannersAreUnparsedOnce) {
  const RunResult server_first = run_all_splits(
      {server(10, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), client(20, "SSH-2.0-OpenSSH_9.2\r\n"),
       closed(30)});
  EXPECT_EQ(server_first.mode, TrackerMode::kUnparsed);
  EXPECT_EQ(server_first.unparsed, 1);
  EXPECT_TRUE(server_first.exchanges.empty());

  const RunResult client_first = run_all_splits({client(10, "SSH-2.0-OpenSSH_9.2\r\n")});
  EXPECT_EQ(client_first.unparsed, 1);
}

TEST(HttpTracker, Http2PriorKnowledgeIsUnparsed) {
  const RunResult r =
      run_all_splits({client(10, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), closed(20)});
  EXPECT_EQ(r.mode, TrackerMode::kUnparsed);
  EXPECT_EQ(r.unparsed, 1);
}

TEST(HttpTracker, MalformedResponseFailsPendingRequests) {
  const RunResult r = run_all_splits({client(10, get("/one") + get("/two")),
                                      server(20, "HTTP/1.1 2x0 Bad\r\n\r\n"), closed(30)});
  EXPECT_EQ(r.mode, TrackerMode::kUnparsed);
  EXPECT_EQ(r.unparsed, 1);
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].path, "/one");
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kParseError);
  EXPECT_EQ(r.exchanges[0].status, 0);
  EXPECT_EQ(r.exchanges[1].path, "/two");
  EXPECT_EQ(r.exchanges[1].outcome, Outcome::kParseError);
}

TEST(HttpTracker, MalformedRequestAfterGoodOneStopsTracking) {
  const RunResult r = run_all_splits({client(10, get("/good")), client(11, "GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
                                      server(20, ok("late")), closed(30)});
  EXPECT_EQ(r.mode, TrackerMode::kUnparsed);
  EXPECT_EQ(r.unparsed, 1);
  // The complete request is reported as not followed; the malformed one is not a request.
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].path, "/good");
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kParseError);
}

TEST(HttpTracker, CloseBeforeResponse) {
  const RunResult r = run_all_splits({client(10, get("/slow")), client_eof(11), closed(20)});
  ASSERT_EQ(r.exchanges.size(), 1u);
  const SeenExchange& e = r.exchanges[0];
  EXPECT_EQ(e.outcome, Outcome::kClosedBeforeResponse);
  EXPECT_EQ(e.status, 0);
  EXPECT_EQ(e.path, "/slow");
  EXPECT_EQ(e.request_done, 10);
  EXPECT_EQ(e.response_headers_done, 0);
  EXPECT_EQ(e.ended, 20) << "given up when the connection closed: the client waited 10";
  EXPECT_EQ(e.response_bytes, 0u);
  EXPECT_EQ(r.pending, 0u);
}

TEST(HttpTracker, ResetDuringResponseBody) {
  const std::string partial = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
  const RunResult r = run_all_splits({client(10, get("/big")), server(20, partial), reset(30)});
  ASSERT_EQ(r.exchanges.size(), 1u);
  const SeenExchange& e = r.exchanges[0];
  EXPECT_EQ(e.outcome, Outcome::kResetBeforeResponse);
  EXPECT_EQ(e.status, 0);  // no complete response
  EXPECT_EQ(e.reason, "");
  EXPECT_EQ(e.response_headers_done, 20);
  EXPECT_EQ(e.response_done, 0);
  EXPECT_EQ(e.response_bytes, partial.size());
  EXPECT_EQ(e.response_body_bytes, 10u);
}

TEST(HttpTracker, PartialRequestHeadIsNotReportedOnClose) {
  const RunResult r = run_all_splits({client(10, "GET /half HTTP/1.1\r\nHo"), closed(20)});
  EXPECT_TRUE(r.exchanges.empty());
  EXPECT_EQ(r.unparsed, 0);
}

TEST(HttpTracker, LongPathIsTruncated) {
  TrackerLimits limits;
  limits.max_path_bytes = 16;
  const std::string path = "/" + std::string(99, 'p') + "?q=1";
  const RunResult r = run_all_splits({client(10, get(path)), server(20, ok(""))}, limits);
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_TRUE(r.exchanges[0].path_truncated);
  EXPECT_EQ(r.exchanges[0].path, path.substr(0, 16));
  EXPECT_EQ(r.exchanges[0].request_bytes, get(path).size());

  const RunResult exact = run_all_splits(
      {client(10, get(path.substr(0, 16))), server(20, ok(""))}, limits);
  ASSERT_EQ(exact.exchanges.size(), 1u);
  EXPECT_FALSE(exact.exchanges[0].path_truncated);
}

// Past max_pipelined pending requests, later ones wait unparsed until half are answered;
// every request is still paired with its own response and keeps the time it arrived.
TEST(HttpTracker, PipeliningPastTheLimitPairsEveryRequest) {
  TrackerLimits limits;
  limits.max_pipelined = 2;
  std::string requests;
  for (int i = 1; i <= 7; ++i) requests += get("/" + std::to_string(i));
  Script script{client(10, requests)};
  for (int i = 1; i <= 7; ++i) script.push_back(server(20 + i, ok(std::string(i, 'b'))));
  script.push_back(closed(40));
  const RunResult r = run_all_splits(script, limits);
  EXPECT_EQ(r.unparsed, 0);
  EXPECT_EQ(r.mode, TrackerMode::kHttp);
  ASSERT_EQ(r.exchanges.size(), 7u);
  for (int i = 1; i <= 7; ++i) {
    const SeenExchange& e = r.exchanges[static_cast<size_t>(i - 1)];
    EXPECT_EQ(e.outcome, Outcome::kCompleted);
    EXPECT_EQ(e.path, "/" + std::to_string(i));
    EXPECT_EQ(e.status, 200);
    EXPECT_EQ(e.request_first_byte, 10);
    EXPECT_EQ(e.request_headers_done, 10);
    EXPECT_EQ(e.response_headers_done, 20 + i);
    EXPECT_EQ(e.response_body_bytes, static_cast<uint64_t>(i));
    EXPECT_EQ(e.request_bytes, get("/" + std::to_string(i)).size());
  }
}

TEST(HttpTracker, RequestsHeldBehindAFullPipelineAreReportedAtClose) {
  TrackerLimits limits;
  limits.max_pipelined = 2;
  std::string requests;
  for (int i = 1; i <= 5; ++i) requests += get("/" + std::to_string(i));
  const RunResult r =
      run_all_splits({client(10, requests), server(20, ok("a")), reset(30)}, limits);
  ASSERT_EQ(r.exchanges.size(), 5u);
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kCompleted);
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_EQ(r.exchanges[i].outcome, Outcome::kResetBeforeResponse);
    EXPECT_EQ(r.exchanges[i].path, "/" + std::to_string(i + 1));
    EXPECT_EQ(r.exchanges[i].request_first_byte, 10);
  }
  EXPECT_EQ(r.unparsed, 0);
}

// Past the held-bytes bound too, the requests already pending are still paired; the rest are
// not counted (never invented as errors) and the connection is counted unparsed once.
TEST(HttpTracker, PipeliningPastTheHeldBoundCountsTheOverflowHonestly) {
  TrackerLimits limits;
  limits.max_pipelined = 2;
  limits.max_held_bytes = 64;
  std::string requests;
  for (int i = 1; i <= 10; ++i) requests += get("/" + std::to_string(i));
  Script script{client(10, requests)};
  for (int i = 1; i <= 10; ++i) script.push_back(server(20 + i, ok("b")));
  const RunResult r = run_all_splits(script, limits);
  EXPECT_EQ(r.unparsed, 1);
  EXPECT_EQ(r.mode, TrackerMode::kUnparsed);
  ASSERT_EQ(r.exchanges.size(), 2u);
  for (const SeenExchange& e : r.exchanges) EXPECT_EQ(e.outcome, Outcome::kCompleted);
  EXPECT_EQ(r.exchanges[1].path, "/2");
}

TEST(HttpTracker, EarlyResponseWhileRequestBodyStillArrives) {
  const std::string head = "POST /upload HTTP/1.1\r\nContent-Length: 20\r\n\r\n";
  const std::string too_large = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n";
  const RunResult r = run_all_splits({client(10, head + "0123456789"), server(20, too_large),
                                      client(30, "0123456789"), client(40, get("/next")),
                                      server(50, ok("n"))});
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].status, 413);
  EXPECT_EQ(r.exchanges[0].request_done, 0);
  EXPECT_EQ(r.exchanges[0].request_bytes, head.size() + 10);
  EXPECT_EQ(r.exchanges[0].request_body_bytes, 10u);
  EXPECT_EQ(r.exchanges[1].path, "/next");
  EXPECT_EQ(r.exchanges[1].request_first_byte, 40);
  EXPECT_EQ(r.exchanges[1].request_bytes, get("/next").size());
}

// A server may answer a request whose head never finished (nginx's 400 for an oversized header,
// a canned 431): the exchange is timed from the request's first byte, never from an unset 0.
TEST(HttpTracker, AnswerBeforeTheRequestHeadEndsIsTimedFromItsFirstByte) {
  const std::string partial = "GET /huge HTTP/1.1\r\nHost: svc\r\nX-Big: " + std::string(300, 'a');
  const std::string refused =
      "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
      "Connection: close\r\n\r\n";
  const MonoNanos t0 = 5'000'000'000'000;  // an uptime of 5000 s, as a real clock would give
  const RunResult r =
      run_all_splits({client(t0, partial), server(t0 + 700, refused), closed(t0 + 900)});
  ASSERT_EQ(r.exchanges.size(), 1u);
  const SeenExchange& e = r.exchanges[0];
  EXPECT_EQ(e.path, "/huge");
  EXPECT_EQ(e.status, 431);
  EXPECT_EQ(e.request_headers_done, 0);
  EXPECT_EQ(e.request_first_byte, t0);

  Exchange ex;
  ex.request_first_byte = e.request_first_byte;
  ex.request_headers_done = e.request_headers_done;
  ex.response_headers_done = e.response_headers_done;
  ex.response_done = e.response_done;
  EXPECT_EQ(ex.latency(), 700);
  EXPECT_EQ(ex.total_time(), 700);

  Exchange unset;  // no timestamps at all: no latency rather than a huge one
  unset.response_headers_done = t0;
  unset.response_done = t0;
  EXPECT_EQ(unset.latency(), 0);
  EXPECT_EQ(unset.total_time(), 0);
}

// idle() is what lets a stopping relay close a keep-alive connection at once: true only
// between exchanges, never while a request or a response is on its way.
TEST(HttpTracker, IdleOnlyBetweenExchanges) {
  RecordingSink sink;
  HttpTracker t(sink, 1);
  EXPECT_TRUE(t.idle());
  const std::string req = get("/a");
  t.on_client_bytes(std::span(req.data(), 5), 1);
  EXPECT_FALSE(t.idle());  // a request head on its way
  t.on_client_bytes(std::span(req.data() + 5, req.size() - 5), 2);
  EXPECT_FALSE(t.idle());  // waiting for the answer
  const std::string resp = ok("hello");
  t.on_server_bytes(std::span(resp.data(), resp.size() - 2), 3);
  EXPECT_FALSE(t.idle());  // the answer is on its way
  t.on_server_bytes(std::span(resp.data() + resp.size() - 2, 2), 4);
  EXPECT_TRUE(t.idle());
  const std::string blank = "\r\n";
  t.on_client_bytes(blank, 5);
  EXPECT_FALSE(t.idle());  // bytes of a next message, however few
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  t.on_client_bytes(upgrade, 6);
  t.on_server_bytes(std::string("HTTP/1.1 101 Switching Protocols\r\n\r\n"), 7);
  EXPECT_EQ(t.mode(), TrackerMode::kPassthrough);
  EXPECT_FALSE(t.idle());  // opaque bytes: nobody knows whether they are between messages
}

TEST(HttpTracker, UnsolicitedResponseIsIgnored) {
  const RunResult r = run_all_splits(
      {server(10, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
       server_eof(11), closed(12)});
  EXPECT_TRUE(r.exchanges.empty());
  EXPECT_EQ(r.unparsed, 0);
}

TEST(HttpTracker, BlankLinesBetweenRequestsCountTowardsTheNext) {
  const RunResult r = run_all_splits({client(10, get("/1")), server(11, ok("")),
                                      client(20, "\r\n" + get("/2")), server(21, ok(""))});
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[1].request_bytes, get("/2").size() + 2);
}

TEST(HttpTracker, NothingHappensAfterClose) {
  const RunResult r = run_all_splits({client(10, get("/x")), closed(20), closed(21),
                                      server(30, ok("late")), client(31, "garbage\x01")});
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].outcome, Outcome::kClosedBeforeResponse);
  EXPECT_EQ(r.unparsed, 0);
}

TEST(HttpTracker, ChunkedResponseWithContentLengthIsFramedByChunks) {
  const std::string resp =
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n";
  const RunResult r = run_all_splits(
      {client(10, get("/legacy") + get("/next")), server(20, resp + ok("n"))});
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 5u);
  EXPECT_EQ(r.exchanges[0].response_bytes, resp.size());
  EXPECT_EQ(r.exchanges[1].path, "/next");
}

TEST(HttpTracker, StatusLineWithoutReasonAndBareLineFeeds) {
  const std::string resp = "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx";
  const std::string lf_req = "GET /lf HTTP/1.1\nHost: svc\n\n";
  const std::string lf_resp = "HTTP/1.1 404 Not Found\nContent-Length: 0\n\n";
  const RunResult r = run_all_splits({client(10, get("/noreason")), server(20, resp),
                                      client(30, lf_req), server(40, lf_resp)});
  EXPECT_EQ(r.unparsed, 0);
  ASSERT_EQ(r.exchanges.size(), 2u);
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].reason, "");
  EXPECT_EQ(r.exchanges[1].path, "/lf");
  EXPECT_EQ(r.exchanges[1].status, 404);
  EXPECT_EQ(r.exchanges[1].reason, "Not Found");
  EXPECT_EQ(r.exchanges[1].request_bytes, lf_req.size());
}

TEST(HttpTracker, LongReasonPhraseIsCapped) {
  const std::string reason(500, 'r');
  const RunResult r = run_all_splits({client(10, get("/")), server(20, ok("", 200, reason))});
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_EQ(r.exchanges[0].reason, reason.substr(0, 64));
}

TEST(HttpTracker, UpstreamFailureReportsReceivedRequests) {
  RecordingSink sink;
  HttpTracker t(sink, 9);
  const std::string reqs = get("/a") + "GET /partial HT";
  t.on_client_bytes(reqs, 10);
  t.on_upstream_failed(20);
  t.on_connection_closed(21, false);
  ASSERT_EQ(sink.exchanges.size(), 1u);
  EXPECT_EQ(sink.exchanges[0].path, "/a");
  EXPECT_EQ(sink.exchanges[0].outcome, Outcome::kUpstreamFailed);
  EXPECT_EQ(sink.exchanges[0].status, 0);
  EXPECT_EQ(sink.exchanges[0].scope, 9u);
  EXPECT_EQ(t.pending_requests(), 0u);
}

}  // namespace
}  // namespace netprof::testing
