// What a TLS handshake shows in clear, read from its first messages: the ClientHello (server
// name, ALPN offers, whether TLS 1.3 is offered) and the ServerHello (negotiated version, cipher
// suite, ALPN choice). Nothing is ever decrypted: these messages are plaintext by design.
//
// Pure functions over the body of one handshake message (after its 4-byte type/length header),
// with every length checked against what is left: anything inconsistent returns false and the
// output is to be ignored. What is kept is bounded (kMaxServerNameBytes, kMaxAlpnOffers,
// kMaxAlpnBytes), whatever the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace netprof::tls {

// Record content types (RFC 8446 5.1).
inline constexpr uint8_t kChangeCipherSpec = 20;
inline constexpr uint8_t kAlert = 21;
inline constexpr uint8_t kHandshake = 22;
inline constexpr uint8_t kApplicationData = 23;
inline constexpr uint8_t kHeartbeat = 24;

// Handshake message types.
inline constexpr uint8_t kClientHelloType = 1;
inline constexpr uint8_t kServerHelloType = 2;

// The record layer: a 5-byte header (type, legacy version, length) and at most 2^14 + 2048
// bytes of body (TLS 1.2's TLSCiphertext limit; TLS 1.3's is smaller).
inline constexpr size_t kRecordHeaderBytes = 5;
inline constexpr size_t kMaxRecordBodyBytes = (1 << 14) + 2048;

// A DNS name has at most 253 characters; a longer SNI host_name is not one anyone serves.
inline constexpr size_t kMaxServerNameBytes = 253;
// ALPN protocol ids are short ("h2", "http/1.1", "grpc-exp"); offers beyond these are skipped.
inline constexpr size_t kMaxAlpnOffers = 8;
inline constexpr size_t kMaxAlpnBytes = 32;

struct ClientHello {
  uint16_t legacy_version = 0;
  std::string server_name;        // SNI host_name as sent; empty when there is no SNI
  std::vector<std::string> alpn;  // offers in the client's order (at most kMaxAlpnOffers)
  bool offers_tls13 = false;      // supported_versions lists 0x0304
};

struct ServerHello {
  uint16_t version = 0;  // negotiated: supported_versions when present, else legacy_version
  uint16_t cipher_suite = 0;
  std::string alpn;                  // the server's choice; empty when none
  bool hello_retry_request = false;  // TLS 1.3 HelloRetryRequest: the real ServerHello follows
};

// `body`: the handshake message's body (its 4-byte header excluded).
bool parse_client_hello(std::span<const uint8_t> body, ClientHello& out);
bool parse_server_hello(std::span<const uint8_t> body, ServerHello& out);

// A server name fit for a report key and a metric label: lower-cased; empty stays empty (no
// SNI); anything that is not a DNS-like name (letters, digits, '-', '.', '_', '*'), or longer
// than kMaxServerNameBytes, becomes "{invalid}". Always valid UTF-8.
std::string clean_server_name(std::string_view sni);
// An ALPN protocol id for a report or label: printable ASCII kept, anything else "{invalid}".
std::string clean_alpn(std::string_view id);

}  // namespace netprof::tls
