// Follows the HTTP/1.x conversation of one relayed connection, both directions, and emits one
// Exchange per request. Pure: it sees bytes and timestamps, never sockets, so it can be tested
// on literal byte streams split anywhere.
//
// What gets emitted, and when:
// - kCompleted when the final response is complete (1xx other than 101 are interim; 101, and 2xx
//   to CONNECT, complete at their headers and switch the connection to kPassthrough). A server
//   answering before the request body is complete ends the exchange there (request_done = 0).
// - Pipelining is followed to any depth (see TrackerLimits::max_pipelined for how memory stays
//   bounded).
// - When the connection ends or goes opaque, every pending request whose headers were complete
//   is emitted with kClosedBeforeResponse / kResetBeforeResponse / kParseError, status 0 and
//   reason empty, the other response fields as far as they were seen. A request whose head never
//   completed is not reported. Responses without a pending request (408 on an idle connection)
//   are parsed and dropped.
// - A final response whose status is outside 100-599 (`000`) is framed like any other, so the
//   connection stays parsed, but emitted as kParseError with status 0: it answers nothing.
// - Accepted although llhttp 8.1 is stricter, because RFC 9112 allows them: bare LF line ends,
//   odd header bytes, chunk extensions, a Content-Length repeated with the same value, and in a
//   response Transfer-Encoding: chunked with Content-Length (framed by the chunks). Never
//   accepted: two different Content-Lengths, or Content-Length with Transfer-Encoding in a
//   request; they make the connection kUnparsed and ambiguous_framing() true.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "http/exchange.h"

namespace netprof {

struct TrackerLimits {
  size_t max_path_bytes = 2048;        // longer paths are truncated (flagged in the Exchange)
  // Requests pending (sent, not yet answered) that are tracked at once. Once this many are
  // pending, the client's further bytes are held unparsed until the server has answered half of
  // them, then parsed with the time they arrived: pipelining of any depth pairs correctly.
  size_t max_pipelined = 64;
  // Client bytes held unparsed: while pipelining past max_pipelined, or after an Upgrade/CONNECT
  // request until its answer says whether they are still HTTP. Past this bound the held bytes
  // are let go and the client's side is no longer parsed: the requests already pending are still
  // paired with their responses (an Upgrade answered 101 still goes passthrough); once they are
  // answered, or at close, the connection is counted unparsed (its later requests are not
  // counted at all, rather than as invented errors).
  size_t max_held_bytes = 256 * 1024;
  // Read a trace id from traceparent / X-B3-TraceId / X-Request-Id (http/trace_id.h).
  bool trace_ids = true;
};

enum class TrackerMode : uint8_t {
  kHttp,         // parsing both directions
  kPassthrough,  // after a successful Upgrade or CONNECT: bytes are opaque, by design
  kUnparsed,     // not HTTP, or a parse error: bytes are opaque, connection counted unparsed
};

class HttpTracker {
 public:
  HttpTracker(ExchangeSink& sink, uint32_t scope, const TrackerLimits& limits = {});
  ~HttpTracker();
  HttpTracker(const HttpTracker&) = delete;
  HttpTracker& operator=(const HttpTracker&) = delete;

  // Bytes the client sent towards the server (requests), in order.
  void on_client_bytes(std::span<const char> bytes, MonoNanos now);
  // Bytes the server sent towards the client (responses), in order.
  void on_server_bytes(std::span<const char> bytes, MonoNanos now);
  // The server closed its side: completes a response delimited by connection close.
  void on_server_eof(MonoNanos now);
  // The client closed its sending side (half-close). Pending requests still await answers.
  void on_client_eof(MonoNanos now);
  // The connection is gone. Requests still without a complete response are emitted as errors.
  void on_connection_closed(MonoNanos now, bool reset);
  // The upstream could not be reached: requests already received are emitted as kUpstreamFailed.
  // Ends the tracker like on_connection_closed (which then does nothing).
  void on_upstream_failed(MonoNanos now);

  TrackerMode mode() const;
  // The connection went kUnparsed on a message whose length could be read more than one way
  // (conflicting Content-Lengths, Content-Length with Transfer-Encoding in a request,
  // Transfer-Encoding not ending in chunked, an invalid Content-Length): request smuggling's
  // raw material, counted apart from plain unparsed traffic.
  bool ambiguous_framing() const;
  size_t pending_requests() const;
  // Between exchanges: HTTP, no request pending or being received, no response being received.
  // Closing the connection now loses nothing (what a server does to idle keep-alive
  // connections); a passthrough or unparsed connection is never idle as far as we know.
  bool idle() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace netprof
