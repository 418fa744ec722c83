// Chooses, per relayed connection, which tracker follows it: TLS when the client's first byte is
// a handshake record (0x16, never the start of an HTTP request or of the preface; tls/tracker.h);
// HTTP/2 when the client starts with
// the HTTP/2 connection preface (prior knowledge: gRPC, curl --http2-prior-knowledge) or when
// the first HTTP/1.1 request asks for `Upgrade: h2c` and is answered 101; HTTP/1 otherwise.
// Same interface as HttpTracker, so the relay does not care which one runs.
//
// While the first client bytes are still a prefix of the preface, they (and any server bytes,
// up to kMaxHeldServerBytes) are held and replayed once the choice is made. For Upgrade, the
// HTTP/1 tracker follows the request as usual; its 101 exchange is not emitted: the request
// becomes HTTP/2 stream 1 instead, answered on the new protocol. Only the first request of a
// connection is watched for an h2c upgrade (that is where clients send it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "http/exchange.h"
#include "http/tracker.h"
#include "http2/tracker.h"
#include "tls/tracker.h"

namespace netprof {

enum class WireChoice : uint8_t { kUndecided, kHttp1, kHttp2, kTls };

class ProtocolTracker {
 public:
  ProtocolTracker(ExchangeSink& sink, uint32_t scope, const TrackerLimits& limits = {});
  ~ProtocolTracker();
  ProtocolTracker(const ProtocolTracker&) = delete;
  ProtocolTracker& operator=(const ProtocolTracker&) = delete;

  void on_client_bytes(std::span<const char> bytes, MonoNanos now);
  void on_server_bytes(std::span<const char> bytes, MonoNanos now);
  void on_server_eof(MonoNanos now);
  void on_client_eof(MonoNanos now);
  void on_connection_closed(MonoNanos now, bool reset);
  void on_upstream_failed(MonoNanos now);
  // The server's port (TLS connections are counted per port). Any time before the close.
  void set_server_port(uint16_t port);

  WireChoice choice() const;
  TrackerMode mode() const;  // of the tracker in charge (kHttp while undecided)
  // See HttpTracker: HTTP/1 framing that could be read two ways (always false for HTTP/2).
  bool ambiguous_framing() const;
  // Between exchanges: closing the connection now loses nothing (see HttpTracker::idle; for
  // HTTP/2: no stream open, both directions between frames). Undecided with no byte seen is idle.
  bool idle() const;

  static constexpr size_t kMaxHeldServerBytes = 16 * 1024;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace netprof
