// Follows the HTTP/2 conversation of one relayed connection (RFC 9113), both directions, and
// emits one Exchange per client-initiated stream. Like the HTTP/1 tracker it is pure: bytes and
// timestamps in, exchanges out, so it is tested on literal byte streams split anywhere. It only
// observes; the relay forwards every byte whatever the tracker thinks of it.
//
// - Each direction has its own frame reader and its own HPACK decoder (libnghttp2's inflater):
//   header blocks are decoded in order, also for streams that are not tracked, so the dynamic
//   tables stay in step with the peers'. CONTINUATION, padding, PRIORITY fields and unknown
//   frame types are handled; DATA is counted, never copied.
// - A stream is emitted kCompleted when the response ends (END_STREAM, also on trailers);
//   RST_STREAM before that, or a GOAWAY whose last-stream-id excludes it, emits it as
//   kResetBeforeResponse; the connection ending emits what is left like the HTTP/1 tracker.
// - latency = request header block complete -> final response header block complete;
//   total = -> END_STREAM of the response. Bytes are frame bytes (9-byte header + payload) of
//   the stream's HEADERS, CONTINUATION and DATA frames; body bytes exclude padding.
// - gRPC (content-type application/grpc*): Exchange::grpc is set and grpc_status comes from
//   the trailers or from a trailers-only response.
// - Memory is bounded: at most max_streams streams are tracked at once (others are decoded for
//   HPACK's sake and counted in untracked_streams()), paths are cut at max_path_bytes, and the
//   HPACK tables at max_header_table_bytes (an encoder asking for more makes it unparsed).
// - Bytes that are not HTTP/2 (bad preface, framing or HPACK error) make the connection
//   kUnparsed: counted once, open streams emitted as kParseError, the rest ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "http/exchange.h"
#include "http/tracker.h"

namespace netprof {

struct Http2Limits {
  size_t max_streams = 1024;                  // streams tracked at once per connection
  size_t max_path_bytes = 2048;               // longer :path values are truncated (flagged)
  size_t max_header_table_bytes = 64 * 1024;  // cap on each HPACK dynamic table
  bool trace_ids = true;                      // read trace ids (http/trace_id.h)
};

// What the HTTP/1.1 request that asked for `Upgrade: h2c` carried: it becomes stream 1.
struct UpgradedRequest {
  uint8_t method = 0;  // llhttp_method_t
  std::string_view path;
  bool path_truncated = false;
  MonoNanos request_first_byte = 0;
  MonoNanos request_headers_done = 0;
  uint64_t request_bytes = 0;
  uint64_t request_body_bytes = 0;
};

class Http2Tracker {
 public:
  Http2Tracker(ExchangeSink& sink, uint32_t scope, const Http2Limits& limits = {});
  ~Http2Tracker();
  Http2Tracker(const Http2Tracker&) = delete;
  Http2Tracker& operator=(const Http2Tracker&) = delete;

  // The connection switched from HTTP/1.1 (101 to Upgrade: h2c). Call before any bytes: the
  // request becomes stream 1, whose response comes as HTTP/2 (RFC 7540 3.2).
  void begin_upgraded(const UpgradedRequest& request);

  // Client bytes, starting with the connection preface "PRI * HTTP/2.0...".
  void on_client_bytes(std::span<const char> bytes, MonoNanos now);
  // Server bytes, starting with its SETTINGS frame.
  void on_server_bytes(std::span<const char> bytes, MonoNanos now);
  // The connection is gone: streams without a complete response are emitted as errors.
  void on_connection_closed(MonoNanos now, bool reset);
  void on_upstream_failed(MonoNanos now);

  TrackerMode mode() const;  // kHttp while parsing, kUnparsed after bad input
  // Parsing, no stream open, both directions between frames (and past the client preface).
  bool idle() const;
  size_t open_streams() const;
  uint64_t untracked_streams() const;  // streams not tracked because max_streams were open

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The 24 bytes every HTTP/2 client connection starts with.
inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace netprof
