// Follows one TLS connection without decrypting anything: the record layer of both directions
// (5-byte headers, so a record may span reads and a read hold many records), the ClientHello and
// ServerHello reassembled from however many records and reads they span (at most
// kMaxHelloBytes each), then only record types until the handshake ends. At close it reports
// one TlsConnection to the sink; from the end of the handshake on it only counts bytes.
//
// When the handshake ends (what "handshake time" measures, from the ClientHello's first byte):
// - TLS 1.2 and older: the end of the server's first record after its ChangeCipherSpec (its
//   Finished): the server's last handshake flight, for full and resumed handshakes alike.
// - TLS 1.3: everything after the ServerHello is encrypted, so the server's last flight cannot
//   be told apart. The end is the client's first encrypted record (application_data type) after
//   the ServerHello: the client's Finished, sent once it has received and checked the server's
//   whole flight. An encrypted record too short to be a Finished (under 41 bytes: 32-byte
//   verify_data, inner type, the shortest AEAD tag) is an encrypted alert: a failure.
//
// Failures: an alert record before the end, or a reset / close / unreachable server before it.
// A connection whose first client bytes are not a well-formed ClientHello (or that closes before
// one is complete) is reported as unparsed instead, once. A malformed record after the
// ClientHello stops the following (the connection still counts as TLS, with what was seen).
// The relay's bytes are never changed: this only reads them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "http/exchange.h"

namespace netprof {

class TlsTracker {
 public:
  TlsTracker(ExchangeSink& sink, uint32_t scope, uint16_t server_port);
  ~TlsTracker();
  TlsTracker(const TlsTracker&) = delete;
  TlsTracker& operator=(const TlsTracker&) = delete;

  void on_client_bytes(std::span<const char> bytes, MonoNanos now);
  void on_server_bytes(std::span<const char> bytes, MonoNanos now);
  void on_connection_closed(MonoNanos now, bool reset);
  void on_upstream_failed(MonoNanos now);
  void set_server_port(uint16_t port);

  // The ClientHello was read: this is a TLS connection (reported at close).
  bool is_tls() const;
  // Reported (or to be reported) as unparsed: the first bytes were not a ClientHello.
  bool unparsed() const;
  // Still reading records (before the end of the handshake, no failure, nothing malformed).
  bool following() const;

  // A hello (handshake message header included) larger than this is not followed: the client's
  // makes the connection unparsed, the server's stops the following.
  static constexpr size_t kMaxHelloBytes = 16 * 1024;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace netprof
