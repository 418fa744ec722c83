// Follows the HTTP/1.x conversation of one relayed connection, both directions, and emits one
// Exchange per request. Pure: it sees bytes and timestamps, never sockets, so it can be tested
// on literal byte streams split anywhere.
//
// What gets emitted, and when:
// - kCompleted when the final response is complete (1xx other than 101 are interim; 101, and 2xx
//   to CONNECT, complete at their headers and switch the connection to kPassthrough). A server
//   answering before the request body is complete ends the exchange there (request_done = 0).
// - When the connection ends or goes opaque, every pending request whose headers were complete
//   is emitted with kClosedBeforeResponse / kResetBeforeResponse / kParseError, status 0 and
//   reason empty, the other response fields as far as they were seen. A request whose head never
//   completed is not reported. Responses without a pending request (408 on an idle connection)
//   are parsed and dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "http/exchange.h"

namespace netprof {

struct TrackerLimits {
  size_t max_path_bytes = 2048;        // longer paths are truncated (flagged in the Exchange)
  // A request beyond this many pending ones makes the connection opaque (kUnparsed, counted
  // once); the pending ones are emitted as kParseError. Tracking fewer would misalign every later
  // response, and a client this far ahead of its server is pathological.
  size_t max_pipelined = 64;
  size_t max_upgrade_hold_bytes = 64 * 1024;  // client bytes held while an Upgrade is answered
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
  size_t pending_requests() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace netprof
