// The HTTP/1.1 message framer (user/http/message_reader.h) on literals: lengths, chunks,
// pipelining, close-delimited and bodiless responses, limits, errors, and every split of the
// bytes reading the same as the whole.
#include "http/message_reader.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace netprof {
namespace {

using Status = HttpMessageReader::Status;

constexpr char kPostWithLength[] =
    "POST /orders?id=7 HTTP/1.1\r\nHost: shop\r\nContent-Type: text/plain\r\n"
    "Content-Length: 11\r\n\r\nhello world";
constexpr char kChunkedResponse[] =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Empty:\r\n\r\n"
    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-Field: t\r\n\r\n";
constexpr char kPipelined[] =
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

// Everything in `bytes`, as the messages the reader makes of it, fed in pieces that end at
// `cuts` (offsets); the reader's error ends the list with a message whose method is "<error>".
std::vector<HttpMessage> read_all(std::string_view bytes, HttpMessageKind kind,
                                  const std::vector<size_t>& cuts = {}) {
  HttpMessageReader reader(kind);
  std::vector<HttpMessage> out;
  // Adds what `s` completed; false once there is nothing more to read.
  auto collect = [&](Status s) {
    if (s == Status::kMessage) {
      out.push_back(reader.take_message());
      reader.next();
      return true;
    }
    if (s == Status::kError) {
      HttpMessage failed;
      failed.method = "<error>";
      failed.body = reader.error();
      out.push_back(failed);
    }
    return false;
  };
  std::string pending;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(bytes.size());
  for (size_t end : ends) {
    pending.append(bytes.substr(from, end - from));
    from = end;
    while (!pending.empty()) {
      size_t used = 0;
      const Status s = reader.feed(pending, used);
      pending.erase(0, used);
      if (!collect(s)) {
        if (s == Status::kError) return out;
        break;
      }
    }
  }
  collect(reader.finish());
  return out;
}

// What a test compares: the fields a reader of the message uses.
std::string summary(const std::vector<HttpMessage>& messages) {
  std::string s;
  for (const HttpMessage& m : messages) {
    s += m.method + " " + m.target + " " + std::to_string(m.status) + " [";
    for (const auto& [k, v] : m.headers) s += k + "=" + v + ";";
    s += "] " + m.body + " keep_alive=" + std::to_string(m.keep_alive) +
         " head=" + std::to_string(m.head_bytes) + "\n";
  }
  return s;
}

TEST(HttpMessageReader, ReadsARequestWithContentLength) {
  HttpMessageReader reader(HttpMessageKind::kRequest);
  const std::string bytes = kPostWithLength;
  size_t used = 0;
  ASSERT_EQ(reader.feed(bytes, used), Status::kMessage) << reader.error();
  EXPECT_EQ(used, bytes.size());
  const HttpMessage& m = reader.message();
  EXPECT_EQ(m.method, "POST");
  EXPECT_EQ(m.target, "/orders?id=7");
  EXPECT_EQ(m.header("content-type"), "text/plain");
  EXPECT_EQ(m.header("host"), "shop");
  EXPECT_EQ(m.body, "hello world");
  EXPECT_TRUE(m.keep_alive);
  EXPECT_TRUE(m.has_body());
  EXPECT_EQ(m.head_bytes, bytes.size() - 11);
}

TEST(HttpMessageReader, DecodesChunksAndKeepsEmptyHeaderValues) {
  const auto messages = read_all(kChunkedResponse, HttpMessageKind::kResponse);
  ASSERT_EQ(messages.size(), 1u) << summary(messages);
  EXPECT_EQ(messages[0].status, 200);
  EXPECT_EQ(messages[0].body, "hello world");
  EXPECT_TRUE(messages[0].has_header("x-empty"));
  EXPECT_EQ(messages[0].header("x-empty"), "");
  EXPECT_EQ(messages[0].header("transfer-encoding"), "chunked");
}

TEST(HttpMessageReader, StopsAtEachPipelinedMessage) {
  HttpMessageReader reader(HttpMessageKind::kRequest);
  std::string_view bytes = kPipelined;
  std::vector<std::string> seen;
  while (!bytes.empty()) {
    size_t used = 0;
    ASSERT_EQ(reader.feed(bytes, used), Status::kMessage) << reader.error();
    bytes.remove_prefix(used);
    seen.push_back(reader.message().method + " " + reader.message().target + " " +
                   reader.message().body + " " + std::to_string(reader.message().keep_alive));
    reader.next();
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"GET /a  1", "POST /b abc 1", "GET /c  0"}));
}

// However the bytes are cut, the messages read are the same.
TEST(HttpMessageReader, EverySplitReadsTheSame) {
  struct Case {
    const char* bytes;
    HttpMessageKind kind;
  };
  for (const Case& c : {Case{kPostWithLength, HttpMessageKind::kRequest},
                        Case{kChunkedResponse, HttpMessageKind::kResponse},
                        Case{kPipelined, HttpMessageKind::kRequest}}) {
    const std::string bytes = c.bytes;
    const std::string whole = summary(read_all(bytes, c.kind));
    ASSERT_EQ(whole.find("<error>"), std::string::npos) << whole;
    for (size_t at = 1; at < bytes.size(); ++at)
      EXPECT_EQ(summary(read_all(bytes, c.kind, {at})), whole) << "cut at " << at;
    std::vector<size_t> every;
    for (size_t at = 1; at < bytes.size(); ++at) every.push_back(at);
    EXPECT_EQ(summary(read_all(bytes, c.kind, every)), whole) << "a byte at a time";
  }
}

TEST(HttpMessageReader, AResponseWithoutLengthEndsAtTheClose) {
  const auto messages = read_all("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end",
                                 HttpMessageKind::kResponse);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].body, "to the end");
  EXPECT_FALSE(messages[0].keep_alive);
}

TEST(HttpMessageReader, AResponseToHeadHasNoBodyWhateverItsLength) {
  HttpMessageReader reader(HttpMessageKind::kResponse);
  reader.expect_no_body();
  const std::string bytes =
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
  size_t used = 0;
  ASSERT_EQ(reader.feed(bytes, used), Status::kMessage) << reader.error();
  EXPECT_EQ(reader.message().body, "");
  EXPECT_EQ(used, bytes.find("HTTP/1.1 204"));
  reader.next();
  ASSERT_EQ(reader.feed(std::string_view(bytes).substr(used), used), Status::kMessage);
  EXPECT_EQ(reader.message().status, 204);
}

// The admin server reads heads only: a body is its caller's business (it refuses it).
TEST(HttpMessageReader, HeadOnlyStopsBeforeTheBody) {
  HttpMessageReader reader(HttpMessageKind::kRequest, {}, /*head_only=*/true);
  const std::string bytes = kPostWithLength;
  size_t used = 0;
  ASSERT_EQ(reader.feed(bytes, used), Status::kHead) << reader.error();
  EXPECT_EQ(used, bytes.size() - 11);
  EXPECT_EQ(reader.message().head_bytes, used);
  EXPECT_TRUE(reader.message().has_body());
  EXPECT_EQ(reader.message().body, "");
}

// A server that answers at the head reads pipelined requests one head after the other; the
// body of one is skipped, and counts for no head limit.
TEST(HttpMessageReader, HeadOnlySkipsToTheNextHead) {
  HttpReaderLimits limits;
  limits.max_head_bytes = 100;
  HttpMessageReader reader(HttpMessageKind::kRequest, limits, /*head_only=*/true);
  const std::string bytes = "POST /a HTTP/1.1\r\nContent-Length: 200\r\n\r\n" +
                            std::string(200, 'x') +
                            "GET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
  std::vector<std::string> targets;
  for (size_t at = 0; at < bytes.size();) {
    size_t used = 0;
    const Status s = reader.feed(std::string_view(bytes).substr(at, 7), used);
    at += used;
    if (s == Status::kNeedMore) continue;
    ASSERT_EQ(s, Status::kHead) << reader.error();
    targets.push_back(reader.message().target);
    EXPECT_EQ(reader.message().body, "");
    reader.next();
  }
  EXPECT_EQ(targets, (std::vector<std::string>{"/a", "/b", "/c"}));
}

TEST(HttpMessageReader, AHeadOverTheLimitIsAnErrorAtTheLimit) {
  HttpReaderLimits limits;
  limits.max_head_bytes = 64;
  const std::string fits = "GET / HTTP/1.1\r\nX: " + std::string(64 - 23, 'a') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 64u);
  HttpMessageReader ok(HttpMessageKind::kRequest, limits);
  size_t used = 0;
  EXPECT_EQ(ok.feed(fits, used), Status::kMessage) << ok.error();

  const std::string over = "GET / HTTP/1.1\r\nX: " + std::string(1000, 'a') + "\r\n\r\n";
  HttpMessageReader reader(HttpMessageKind::kRequest, limits);
  EXPECT_EQ(reader.feed(over, used), Status::kError);
  EXPECT_EQ(used, 64u) << "nothing past the limit is parsed";
  EXPECT_EQ(reader.error(), "head larger than 64 bytes");
}

TEST(HttpMessageReader, ABodyOverTheLimitIsAnError) {
  HttpReaderLimits limits;
  limits.max_body_bytes = 4;
  HttpMessageReader reader(HttpMessageKind::kRequest, limits);
  size_t used = 0;
  EXPECT_EQ(reader.feed(kPostWithLength, used), Status::kError);
  EXPECT_EQ(reader.error(), "body larger than 4 bytes");
}

TEST(HttpMessageReader, MalformedBytesAreAClearError) {
  for (const char* bad : {
           "hello\r\n\r\n",
           "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
           "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "GET / HTTP/1.1\r\nNo-Colon\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
       }) {
    const auto messages = read_all(bad, HttpMessageKind::kRequest);
    ASSERT_FALSE(messages.empty()) << bad;
    EXPECT_EQ(messages.back().method, "<error>") << bad;
    EXPECT_EQ(messages.back().body.rfind("bad HTTP/1.1 request (HPE_", 0), 0u)
        << bad << ": " << messages.back().body;
  }
  EXPECT_FALSE(
      parse_http_message("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", HttpMessageKind::kRequest)
          .ok());
  EXPECT_EQ(parse_http_message("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                               HttpMessageKind::kResponse)
                .error(),
            "bad HTTP/1.1 response (HPE_INVALID_EOF_STATE: Invalid EOF state)");
}

TEST(HttpMessageReader, NothingIsReadAfterAnUpgrade) {
  HttpMessageReader reader(HttpMessageKind::kRequest);
  const std::string bytes =
      "GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
  size_t used = 0;
  ASSERT_EQ(reader.feed(bytes, used), Status::kMessage) << reader.error();
  EXPECT_TRUE(reader.message().upgrade);
  EXPECT_EQ(used, bytes.find('\x81'));
  reader.next();
  EXPECT_EQ(reader.feed(std::string_view(bytes).substr(used), used), Status::kError);
}

TEST(ReadHttpMessage, ReadsPipelinedMessagesFromASocketAndSaysWhenItEndsEarly) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  const std::string bytes =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "GET /c HTTP/1.1\r\n\r\nGET /d HTTP/1.1\r\nHost:";
  ASSERT_EQ(::write(pair[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(pair[1]);
  HttpMessageReader reader(HttpMessageKind::kRequest);
  std::string carry;
  for (const char* target : {"/a", "/b", "/c"}) {
    auto m = read_http_message(pair[0], reader, carry, 5000);
    ASSERT_TRUE(m.ok()) << m.error();
    EXPECT_EQ(m->target, target);
  }
  auto last = read_http_message(pair[0], reader, carry, 5000);
  EXPECT_FALSE(last.ok());
  EXPECT_NE(last.error().find("HPE_INVALID_EOF_STATE"), std::string::npos) << last.error();
  ::close(pair[0]);
}

}  // namespace
}  // namespace netprof
