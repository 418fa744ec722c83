// The record of one TLS connection as the relay saw it, never decrypted: what the hellos said
// in clear, when the handshake ended, bytes each way and how it ended. The contract between the
// TLS tracker (which fills it at close) and the sinks that count or show it. Views point into
// tracker-owned memory and are valid only during the ExchangeSink call.
#pragma once

#include <cstdint>
#include <string_view>

#include "http/exchange.h"

namespace netprof {

enum class TlsFailure : uint8_t {
  kNone,            // the handshake completed (or was not followed to its end: see `followed`)
  kAlert,           // an alert record before the handshake completed
  kReset,           // the connection was reset before the handshake completed
  kClosed,          // the connection closed (FIN) before the handshake completed
  kUpstreamFailed,  // the server could not be reached
};

struct TlsConnection {
  uint32_t scope = 0;
  uint16_t port = 0;             // the server's port
  std::string_view server_name;  // SNI, cleaned (tls::clean_server_name); "" without SNI
  // The server's choice, cleaned; "" when none or not visible: TLS 1.3 encrypts it, so there it
  // is known only when the client offered a single protocol and the handshake completed.
  std::string_view alpn;
  std::string_view alpn_offered;  // the client's offers, comma-separated, cleaned
  uint16_t version = 0;           // negotiated (0 when no ServerHello was seen)
  uint16_t cipher_suite = 0;      // IANA value (0 when no ServerHello was seen)

  MonoNanos first_byte = 0;      // the ClientHello's first byte
  MonoNanos handshake_done = 0;  // 0 when the handshake was not seen to complete
  MonoNanos closed = 0;
  uint64_t bytes_client_to_server = 0;
  uint64_t bytes_server_to_client = 0;

  TlsFailure failure = TlsFailure::kNone;
  bool alert_from_server = false;  // kAlert: which side sent it
  uint8_t alert_description = 0;   // kAlert in clear: its description (0 when encrypted)

  MonoNanos handshake_time() const {
    return handshake_done > first_byte ? handshake_done - first_byte : 0;
  }
  MonoNanos duration() const { return closed > first_byte ? closed - first_byte : 0; }
};

// "TLS1.3", "TLS1.2", "TLS1.1", "TLS1.0", "SSL3.0"; "unknown" for anything else (0 included).
inline std::string_view tls_version_name(uint16_t version) {
  switch (version) {
    case 0x0304:
      return "TLS1.3";
    case 0x0303:
      return "TLS1.2";
    case 0x0302:
      return "TLS1.1";
    case 0x0301:
      return "TLS1.0";
    case 0x0300:
      return "SSL3.0";
    default:
      return "unknown";
  }
}

// "" for kNone.
inline std::string_view tls_failure_name(TlsFailure failure) {
  switch (failure) {
    case TlsFailure::kNone:
      return {};
    case TlsFailure::kAlert:
      return "alert";
    case TlsFailure::kReset:
      return "connection_reset";
    case TlsFailure::kClosed:
      return "connection_closed";
    case TlsFailure::kUpstreamFailed:
      return "upstream_unreachable";
  }
  return "unknown";
}

}  // namespace netprof
