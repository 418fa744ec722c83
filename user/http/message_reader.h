// One HTTP/1.1 message framer on llhttp, for the places that read whole messages from a
// socket: the admin server's request heads, the export client's responses, the demo's own
// server and client, and the tests' clients and servers. (The relay's tracker follows both
// directions of a connection byte by byte instead and never buffers a body: user/http/tracker.)
//
// Bytes are fed as they come; the reader stops at the end of each message (or of its head, if
// asked), so pipelined bytes after it are left for the next one and a message split at any byte
// reads the same. Strict: bad syntax, an ambiguous length (both Content-Length and
// Transfer-Encoding, two lengths) or a head or body over its limit is an error with a message
// saying which, never a guess.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/expected.h"

namespace netprof {

enum class HttpMessageKind : uint8_t { kRequest, kResponse };

struct HttpMessage {
  std::string method;  // requests: "GET"
  std::string target;  // requests: as sent, "/path?query"
  int status = 0;      // responses: 200
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  // In order of arrival; names lower-cased, values without surrounding whitespace.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;         // chunked transfer coding removed; empty when read head-only
  bool keep_alive = false;  // the connection may carry another message after this one
  bool upgrade = false;     // an Upgrade/CONNECT: what follows on the connection is not HTTP/1.1
  size_t head_bytes = 0;    // start line, headers and the blank line as they came on the wire

  // The first value of a header (name in lower case), or empty.
  std::string_view header(std::string_view lower_name) const;
  bool has_header(std::string_view lower_name) const;
  // Content-Length > 0 or any Transfer-Encoding: a body follows the head.
  bool has_body() const;
};

struct HttpReaderLimits {
  size_t max_head_bytes = 64 * 1024;         // start line, headers and blank line
  size_t max_body_bytes = 16 * 1024 * 1024;  // after decoding
};

class HttpMessageReader {
 public:
  enum class Status : uint8_t {
    kNeedMore,  // every byte given was taken; the message is not complete yet
    kHead,      // head_only: the head is complete (message().body stays empty)
    kMessage,   // a whole message is complete
    kError,     // see error(); the connection cannot be read as HTTP any more
  };

  explicit HttpMessageReader(HttpMessageKind kind, HttpReaderLimits limits = {},
                             bool head_only = false);
  ~HttpMessageReader();
  HttpMessageReader(HttpMessageReader&&) noexcept;
  HttpMessageReader& operator=(HttpMessageReader&&) noexcept;

  // Parses from `bytes` up to the end of the current message (or head). `consumed` is how
  // many bytes it took: the rest belongs to the next message. After kHead, kMessage or
  // kError, call next() before feeding more.
  Status feed(std::string_view bytes, size_t& consumed);
  // The peer closed its side: a response delimited by the close is complete now (kMessage);
  // anything else unfinished is an error (kError), nothing at all is kNeedMore.
  Status finish();
  // Ready for the next message on the same connection (keeps the parser's state: a
  // connection after an Upgrade or an error stays unreadable). After kHead, the rest of that
  // message (its body) is skipped unread before the next one.
  void next();

  // For a response: the request was HEAD (or the like), so this response has no body whatever
  // its headers say. Set before its head is complete.
  void expect_no_body();

  const HttpMessage& message() const;
  HttpMessage take_message();  // the message, moved out
  const std::string& error() const;
  // The error is a limit (max_head_bytes, max_body_bytes), not bad syntax: a server answers
  // 431 or 413 for it rather than 400.
  bool over_limit() const;
  bool started() const;  // some byte of a message was parsed since the last next()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads one message from a socket (blocking or not: it polls), keeping bytes read past it in
// `carry` for the next call with the same reader. timeout_ms bounds the whole message; < 0
// waits for ever. `wire`, when given, gets the message's bytes as they came (a test that
// compares or hashes them).
Expected<HttpMessage> read_http_message(int fd, HttpMessageReader& reader, std::string& carry,
                                        int timeout_ms, std::string* wire = nullptr);

// Reads one whole message of `kind` from `bytes` (a single message, or the first of several).
// An error if `bytes` end before the message does; a response may end with the bytes.
Expected<HttpMessage> parse_http_message(std::string_view bytes, HttpMessageKind kind,
                                         HttpReaderLimits limits = {});

}  // namespace netprof
