// Randomized conversations for the byte-exactness torture: what a client sends, what the
// server answers, and where each side's turns end, so both test peers can pace themselves like
// real peers (or not at all, for opaque streams); and what the report must count for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace netprof::torture {

enum class Kind : uint8_t {
  kHttp1,   // keep-alive HTTP/1.x, pipelined or not
  kOpaque,  // binary streams, both directions at once
  kH2,      // HTTP/2 (prior knowledge or h2c Upgrade): interleaved streams, frames split anywhere
  kTls,     // a recorded OpenSSL conversation: handshake, application data records, close_notify
};

struct Scenario {
  uint32_t id = 0;
  Kind kind = Kind::kHttp1;
  bool pipelined = false;    // client sends all its turns without waiting for answers
  std::string client_bytes;  // everything the client sends
  std::string server_bytes;  // everything the server sends
  // The conversation in turns: the client's turn i ends at request_ends[i] (an offset into
  // client_bytes); the server sends its turn i, ending at response_ends[i], once client turn i
  // is in; the client sends turn i+1 once server turn i is in (unless pipelined). For HTTP/1
  // a turn is one request and its response. A turn may be empty.
  std::vector<size_t> request_ends;
  std::vector<size_t> response_ends;

  // What the report must count for this connection's exchanges (HTTP/1 requests, HTTP/2
  // streams): statuses (0 for a stream reset before its response), errors as the store counts
  // them, and the bytes the trackers attribute to exchanges.
  uint64_t exchanges = 0, errors = 0, request_bytes = 0, response_bytes = 0;
  std::map<uint16_t, uint64_t> statuses;

  // kTls: what the TLS tracker must see.
  std::string server_name;   // SNI; "" without
  std::string tls_version;   // "TLS1.2", "TLS1.3"; "" when the handshake failed
  bool tls_failure = false;  // the handshake failed with an alert (a refused version)

  bool paced() const { return kind != Kind::kOpaque; }
  const char* kind_name() const;
};

// The tag every stream starts with lets the backend find the scenario of a connection: the
// backend reads kTagBytes first, and for an HTTP/2 preface up to kH2TagBytes (the tag is the
// value of the first entry of the client's SETTINGS). A TLS scenario is found by its first
// kTagBytes (record and ClientHello headers and most of the client random).
constexpr size_t kTagBytes = 32;
constexpr size_t kH2TagBytes = 24 + 9 + 6;
uint32_t find_scenario_tag(const std::string& first_bytes);  // UINT32_MAX if none
bool starts_with_h2_preface(const std::string& first_bytes);

Scenario make_http_scenario(uint32_t id, std::mt19937_64& rng);
Scenario make_opaque_scenario(uint32_t id, std::mt19937_64& rng, size_t max_bytes);
// upgrade: starts as HTTP/1.1 asking for `Upgrade: h2c`, answered 101; else prior knowledge.
Scenario make_h2_scenario(uint32_t id, std::mt19937_64& rng, bool upgrade);
// Runs a real OpenSSL client and server against each other in memory (TLS 1.2 or 1.3, SNI,
// ALPN, resumption now and then, sometimes a version the server refuses) and records the bytes
// of each flight. Empty client_bytes if OpenSSL failed (the test reports it).
Scenario make_tls_scenario(uint32_t id, std::mt19937_64& rng);

std::string random_bytes(std::mt19937_64& rng, size_t n);

}  // namespace netprof::torture
