// The record of one HTTP request/response exchange, as the tracker saw it on the wire.
// It is the contract between the HTTP tracker (which fills it) and everything that counts
// or shows exchanges (stats store, tap). Views point into tracker-owned memory and are only
// valid during the ExchangeSink call.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/http_names.h"  // ExchangeOutcome

namespace netprof {

struct TlsConnection;  // tls/connection.h

// Nanoseconds of CLOCK_MONOTONIC. Never wall time: it does not jump.
using MonoNanos = int64_t;

// The client's address as the relay accepted it (family 0 when unknown: trackers under test).
struct PeerAddress {
  uint8_t family = 0;  // AF_INET or AF_INET6
  uint16_t port = 0;   // host order
  uint8_t bytes[16] = {};
};

// The wire protocol an exchange travelled on. HTTP/2 streams become exchanges like HTTP/1
// requests; the protocol is shown per route.
enum class WireProtocol : uint8_t { kHttp1, kHttp2 };

// What every output counts as an error: no complete response, a status >= 500, or a non-zero
// gRPC status. One rule for the route stats, the flight recorder's failures and /slow's filter.
inline bool counts_as_error(ExchangeOutcome outcome, uint16_t status, int16_t grpc_status) {
  return outcome != ExchangeOutcome::kCompleted || status >= 500 || grpc_status > 0;
}

struct Exchange {
  uint32_t scope = 0;                 // which listener / pod the connection belongs to
  uint8_t method = 0;                 // llhttp_method_t value
  uint8_t http_major = 1, http_minor = 1;
  bool path_truncated = false;        // path longer than the tracker's limit
  std::string_view path;              // request-target as sent, query string included
  uint16_t status = 0;                // 0 when there was no response
  std::string_view reason;            // reason phrase ("OK"); the origin's "state"

  MonoNanos request_first_byte = 0;
  MonoNanos request_headers_done = 0; // 0 if the server answered before the head was complete
  MonoNanos request_done = 0;         // 0 if the request body never completed
  MonoNanos response_headers_done = 0;// 0 if no response headers
  MonoNanos response_done = 0;        // 0 if the response never completed

  uint64_t request_bytes = 0;         // wire bytes: request line + headers + body
  uint64_t request_body_bytes = 0;    // decoded body bytes (chunk framing excluded)
  uint64_t response_bytes = 0;        // wire bytes of the final response, plus any 1xx before it
  uint64_t response_body_bytes = 0;

  ExchangeOutcome outcome = ExchangeOutcome::kCompleted;

  WireProtocol protocol = WireProtocol::kHttp1;
  // Which request of its connection this is, from 1: HTTP/1 counts requests in order, HTTP/2
  // numbers client streams ((stream id + 1) / 2). With connection_id, netprof's request id.
  uint32_t sequence = 0;
  // A trace id the request carried (http/trace_id.h), empty if none or --no-trace-ids.
  std::string_view trace_id;

  // Set by the relay (0 when no relay saw the exchange, as in tracker tests):
  uint64_t connection_id = 0;         // unique within the process, across workers
  PeerAddress peer;                   // the client
  MonoNanos accepted = 0;             // the client connection was accepted
  MonoNanos upstream_connected = 0;   // the connection's first exchange only: upstream connected
  MonoNanos request_sent = 0;         // the request's last byte was written upstream; 0 unknown
  // Reported without a complete response (closed, reset, upstream failed, unparsable): when it
  // was given up, so a request the server never answered shows how long the client waited.
  MonoNanos ended = 0;
  MonoNanos relay_held = 0;           // nanoseconds the connection's bytes waited in netprof's
                                      // buffers (receiver not ready) since its previous exchange

  // gRPC (content-type application/grpc*): the path is the full method /package.Service/Method
  // and is never templated. grpc_status is the grpc-status of the trailers (or of a
  // trailers-only response); -1 when none was seen.
  bool grpc = false;
  int16_t grpc_status = -1;

  // Where timing starts: the request headers seen; for a request the server answered before
  // its head was complete (nginx's 400 for an oversized header, a canned 431), its first byte.
  // Never an unset 0: that would be a latency of the host's uptime.
  // Likewise when the head completed only after the response headers came (an early answer):
  // timing from the head would make the latency negative.
  MonoNanos timed_from() const {
    if (request_headers_done &&
        (response_headers_done == 0 || request_headers_done <= response_headers_done))
      return request_headers_done;
    return request_first_byte;
  }
  // The origin's latency: request headers seen -> response headers seen.
  MonoNanos latency() const {
    return response_headers_done && timed_from() && response_headers_done >= timed_from()
               ? response_headers_done - timed_from()
               : 0;
  }
  // Time to the last response byte.
  MonoNanos total_time() const {
    return response_done && timed_from() && response_done >= timed_from()
               ? response_done - timed_from()
               : 0;
  }
};

// netprof's id of a request: "<connection id>-<sequence>", e.g. "42-3" for the third request
// on connection 42; "" when no relay saw it. Shown in tap lines, /slow and exemplars alike.
inline std::string request_id_text(uint64_t connection_id, uint32_t sequence) {
  if (connection_id == 0) return {};
  return std::to_string(connection_id) + "-" + std::to_string(sequence);
}

// Receives what trackers observe. Implemented by the stats store (and the tap).
class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  virtual void on_exchange(const Exchange& exchange) = 0;
  // A connection whose bytes were not HTTP/1.x (or became unparseable): still relayed,
  // counted once per connection.
  virtual void on_unparsed_connection(uint32_t scope) = 0;
  // An HTTP/2 stream that was relayed but not tracked (its connection had the most streams
  // open that a tracker follows at once, or a request without a usable method): counted, so
  // the totals say what they miss.
  virtual void on_untracked_stream(uint32_t /*scope*/) {}
  // A TLS connection, once, when it closes (tls/tracker.h). Sinks that do not count TLS
  // ignore it.
  virtual void on_tls_connection(const TlsConnection& /*connection*/) {}
};

}  // namespace netprof
