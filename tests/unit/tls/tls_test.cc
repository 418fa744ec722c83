// The TLS hello parser and connection tracker on literal bytes: real transcripts captured from
// OpenSSL (captures.h) and hand-built records for what a capture cannot easily show (alerts,
// HelloRetryRequest, garbage, limits). Every transcript is also replayed with each step split at
// every byte position, and byte by byte: the result must not depend on how TCP cut it.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "captures.h"
#include "http2/protocol_tracker.h"
#include "stats/tls_store.h"
#include "tls/connection.h"
#include "tls/hello.h"
#include "tls/tracker.h"

namespace netprof {
namespace {

namespace cap = netprof::testing::tls_captures;

std::string unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

// Splits a byte stream into its TLS records (the captures are well-formed).
std::vector<std::string> records(const std::string& stream) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at + 5 <= stream.size()) {
    const size_t len =
        (static_cast<uint8_t>(stream[at + 3]) << 8) | static_cast<uint8_t>(stream[at + 4]);
    out.push_back(stream.substr(at, 5 + len));
    at += 5 + len;
  }
  return out;
}

std::string join(const std::vector<std::string>& r, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to && i < r.size(); ++i) out += r[i];
  return out;
}

std::span<const uint8_t> body_of_first_message(const std::string& record, std::string& keep) {
  // record header (5) + handshake header (4)
  const size_t len = (static_cast<uint8_t>(record[6]) << 16) |
                     (static_cast<uint8_t>(record[7]) << 8) | static_cast<uint8_t>(record[8]);
  keep = record.substr(9, len);
  return {reinterpret_cast<const uint8_t*>(keep.data()), keep.size()};
}

std::string record(uint8_t type, const std::string& body, uint8_t minor = 3) {
  std::string r = {static_cast<char>(type), 3, static_cast<char>(minor),
                   static_cast<char>(body.size() >> 8), static_cast<char>(body.size() & 0xff)};
  return r + body;
}

std::string handshake(uint8_t type, const std::string& body) {
  return std::string{static_cast<char>(type), static_cast<char>(body.size() >> 16),
                     static_cast<char>((body.size() >> 8) & 0xff),
                     static_cast<char>(body.size() & 0xff)} +
         body;
}

std::string u16(size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

std::string extension(size_t type, const std::string& data) {
  return u16(type) + u16(data.size()) + data;
}

std::string sni_ext(const std::string& name) {
  const std::string entry = std::string(1, '\0') + u16(name.size()) + name;
  return extension(0, u16(entry.size()) + entry);
}

std::string alpn_ext(const std::vector<std::string>& ids) {
  std::string list;
  for (const auto& id : ids) list += static_cast<char>(id.size()) + id;
  return extension(16, u16(list.size()) + list);
}

std::string client_hello_body(const std::string& extensions, bool with_extensions = true) {
  std::string b = u16(0x0303) + std::string(32, 'r') + std::string(1, '\0') + u16(2) + u16(0x1301) +
                  std::string{1, 0};
  if (with_extensions) b += u16(extensions.size()) + extensions;
  return b;
}

std::string server_hello_body(uint16_t version_ext, const std::string& alpn = "",
                              bool retry = false) {
  static const uint8_t kRetry[32] = {0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11,
                                     0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
                                     0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E,
                                     0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};
  std::string b =
      u16(0x0303) +
      (retry ? std::string(reinterpret_cast<const char*>(kRetry), 32) : std::string(32, 's')) +
      std::string(1, '\0') + u16(0x1301) + std::string(1, '\0');
  std::string ext;
  if (version_ext) ext += extension(43, u16(version_ext));
  if (!alpn.empty()) ext += alpn_ext({alpn});
  if (!ext.empty()) b += u16(ext.size()) + ext;
  return b;
}

std::span<const uint8_t> span_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// ---- the hello parser ------------------------------------------------------------------

TEST(TlsHello, CapturedTls13) {
  const auto c = records(unhex(cap::kTls13ClientHex));
  const auto s = records(unhex(cap::kTls13ServerHex));
  std::string keep;
  tls::ClientHello ch;
  ASSERT_TRUE(tls::parse_client_hello(body_of_first_message(c[0], keep), ch));
  EXPECT_EQ(ch.server_name, "Example.Test");
  EXPECT_EQ(ch.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_TRUE(ch.offers_tls13);
  tls::ServerHello sh;
  ASSERT_TRUE(tls::parse_server_hello(body_of_first_message(s[0], keep), sh));
  EXPECT_EQ(sh.version, 0x0304);
  EXPECT_EQ(sh.alpn, "");                 // TLS 1.3: in the encrypted EncryptedExtensions
  EXPECT_EQ(sh.cipher_suite >> 8, 0x13);  // a TLS 1.3 suite
  EXPECT_FALSE(sh.hello_retry_request);
}

TEST(TlsHello, CapturedTls12) {
  const auto c = records(unhex(cap::kTls12ClientHex));
  const auto s = records(unhex(cap::kTls12ServerHex));
  std::string keep;
  tls::ClientHello ch;
  ASSERT_TRUE(tls::parse_client_hello(body_of_first_message(c[0], keep), ch));
  EXPECT_EQ(ch.server_name, "example.test");
  EXPECT_EQ(ch.alpn, (std::vector<std::string>{"http/1.1"}));
  tls::ServerHello sh;
  ASSERT_TRUE(tls::parse_server_hello(body_of_first_message(s[0], keep), sh));
  EXPECT_EQ(sh.version, 0x0303);
  EXPECT_EQ(sh.alpn, "http/1.1");
}

TEST(TlsHello, CapturedWithoutSniOrAlpn) {
  const auto c = records(unhex(cap::kTls12NosniClientHex));
  const auto s = records(unhex(cap::kTls12NosniServerHex));
  std::string keep;
  tls::ClientHello ch;
  ASSERT_TRUE(tls::parse_client_hello(body_of_first_message(c[0], keep), ch));
  EXPECT_EQ(ch.server_name, "");
  EXPECT_TRUE(ch.alpn.empty());
  tls::ServerHello sh;
  ASSERT_TRUE(tls::parse_server_hello(body_of_first_message(s[0], keep), sh));
  EXPECT_EQ(sh.alpn, "");
  EXPECT_EQ(sh.version, 0x0303);
}

TEST(TlsHello, EveryTruncationIsRejectedOrHarmless) {
  for (auto hex : {cap::kTls13ClientHex, cap::kTls12ClientHex, cap::kTls12NosniClientHex}) {
    std::string keep;
    const auto body = body_of_first_message(records(unhex(hex))[0], keep);
    for (size_t k = 0; k < body.size(); ++k) {
      tls::ClientHello ch;
      // A cut right after the compression methods reads as a hello without extensions.
      if (tls::parse_client_hello(body.subspan(0, k), ch)) {
        EXPECT_TRUE(ch.server_name.empty()) << k;
        EXPECT_TRUE(ch.alpn.empty()) << k;
      }
    }
  }
  std::string keep;
  const auto body = body_of_first_message(records(unhex(cap::kTls13ServerHex))[0], keep);
  for (size_t k = 0; k < body.size(); ++k) {
    tls::ServerHello sh;
    if (tls::parse_server_hello(body.subspan(0, k), sh)) {
      EXPECT_TRUE(sh.alpn.empty()) << k;
    }
  }
}

TEST(TlsHello, EveryByteFlippedStaysBounded) {
  std::string keep;
  const auto original = body_of_first_message(records(unhex(cap::kTls13ClientHex))[0], keep);
  std::string body(reinterpret_cast<const char*>(original.data()), original.size());
  for (size_t i = 0; i < body.size(); ++i) {
    for (int x : {0x01, 0x80, 0xff}) {
      std::string mutated = body;
      mutated[i] = static_cast<char>(mutated[i] ^ x);
      tls::ClientHello ch;
      if (tls::parse_client_hello(span_of(mutated), ch)) {
        EXPECT_LE(ch.server_name.size(), tls::kMaxServerNameBytes);
        EXPECT_LE(ch.alpn.size(), tls::kMaxAlpnOffers);
        for (const auto& id : ch.alpn) EXPECT_LE(id.size(), tls::kMaxAlpnBytes);
      }
    }
  }
}

TEST(TlsHello, Garbage) {
  tls::ClientHello ch;
  tls::ServerHello sh;
  EXPECT_FALSE(tls::parse_client_hello({}, ch));
  EXPECT_FALSE(tls::parse_server_hello({}, sh));
  const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_FALSE(tls::parse_client_hello(span_of(http), ch));
  EXPECT_FALSE(tls::parse_server_hello(span_of(http), sh));
  std::string junk(300, '\xff');
  EXPECT_FALSE(tls::parse_client_hello(span_of(junk), ch));
  junk.assign(300, '\0');
  EXPECT_FALSE(tls::parse_client_hello(span_of(junk), ch));
}

TEST(TlsHello, BuiltHellos) {
  tls::ClientHello ch;
  ASSERT_TRUE(tls::parse_client_hello(
      span_of(client_hello_body(sni_ext("api.example.com") + alpn_ext({"h2", "http/1.1"}))), ch));
  EXPECT_EQ(ch.server_name, "api.example.com");
  EXPECT_EQ(ch.alpn.size(), 2u);
  ASSERT_TRUE(tls::parse_client_hello(span_of(client_hello_body("", false)), ch));
  EXPECT_EQ(ch.server_name, "");
  // Each extension at most once; a name longer than a DNS name; an empty ALPN id.
  EXPECT_FALSE(
      tls::parse_client_hello(span_of(client_hello_body(sni_ext("a") + sni_ext("b"))), ch));
  EXPECT_FALSE(
      tls::parse_client_hello(span_of(client_hello_body(sni_ext(std::string(300, 'a')))), ch));
  EXPECT_FALSE(tls::parse_client_hello(span_of(client_hello_body(alpn_ext({""}))), ch));
  // Many ALPN offers: the first kMaxAlpnOffers kept, each cut at kMaxAlpnBytes.
  std::vector<std::string> many(20, std::string(100, 'p'));
  ASSERT_TRUE(tls::parse_client_hello(span_of(client_hello_body(alpn_ext(many))), ch));
  EXPECT_EQ(ch.alpn.size(), tls::kMaxAlpnOffers);
  EXPECT_EQ(ch.alpn[0].size(), tls::kMaxAlpnBytes);

  tls::ServerHello sh;
  ASSERT_TRUE(tls::parse_server_hello(span_of(server_hello_body(0x0304, "h2")), sh));
  EXPECT_EQ(sh.version, 0x0304);
  EXPECT_EQ(sh.alpn, "h2");
  ASSERT_TRUE(tls::parse_server_hello(span_of(server_hello_body(0x0304, "", true)), sh));
  EXPECT_TRUE(sh.hello_retry_request);
  ASSERT_TRUE(tls::parse_server_hello(span_of(server_hello_body(0)), sh));
  EXPECT_EQ(sh.version, 0x0303);
  // The server selects exactly one protocol.
  std::string two = server_hello_body(0);
  const std::string ext = alpn_ext({"h2", "http/1.1"});
  two += u16(ext.size()) + ext;
  EXPECT_FALSE(tls::parse_server_hello(span_of(two), sh));
}

TEST(TlsHello, CleanNames) {
  EXPECT_EQ(tls::clean_server_name("Example.COM"), "example.com");
  EXPECT_EQ(tls::clean_server_name(""), "");
  EXPECT_EQ(tls::clean_server_name("*.svc_a-1.local"), "*.svc_a-1.local");
  EXPECT_EQ(tls::clean_server_name("a b"), "{invalid}");
  EXPECT_EQ(tls::clean_server_name("caf\xc3\xa9"), "{invalid}");
  EXPECT_EQ(tls::clean_server_name("a\"b"), "{invalid}");
  EXPECT_EQ(tls::clean_server_name(std::string(254, 'a')), "{invalid}");
  EXPECT_EQ(tls::clean_alpn("h2"), "h2");
  EXPECT_EQ(tls::clean_alpn("h\n2"), "{invalid}");
}

// ---- the tracker -------------------------------------------------------------------------

struct SeenTls {
  std::string server_name, alpn, alpn_offered;
  uint16_t port = 0, version = 0;
  MonoNanos first_byte = 0, handshake_done = 0, closed = 0;
  uint64_t c2s = 0, s2c = 0;
  TlsFailure failure = TlsFailure::kNone;
  bool alert_from_server = false;
  uint8_t alert_description = 0;
  bool operator==(const SeenTls&) const = default;
};

std::ostream& operator<<(std::ostream& os, const SeenTls& t) {
  return os << "{" << t.server_name << ":" << t.port << " alpn=" << t.alpn
            << " offered=" << t.alpn_offered << " v=" << std::hex << t.version << std::dec
            << " t=" << t.first_byte << "," << t.handshake_done << "," << t.closed
            << " bytes=" << t.c2s << "/" << t.s2c << " failure=" << int(t.failure)
            << " alert=" << t.alert_from_server << "/" << int(t.alert_description) << "}";
}

struct Sink final : ExchangeSink {
  void on_exchange(const Exchange&) override { ++exchanges; }
  void on_unparsed_connection(uint32_t) override { ++unparsed; }
  void on_tls_connection(const TlsConnection& c) override {
    tls.push_back({std::string(c.server_name), std::string(c.alpn), std::string(c.alpn_offered),
                   c.port, c.version, c.first_byte, c.handshake_done, c.closed,
                   c.bytes_client_to_server, c.bytes_server_to_client, c.failure,
                   c.alert_from_server, c.alert_description});
  }
  std::vector<SeenTls> tls;
  int unparsed = 0, exchanges = 0;
};

struct Step {
  bool client;
  std::string bytes;
};

struct Outcome {
  std::vector<SeenTls> tls;
  int unparsed = 0, exchanges = 0;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "{unparsed=" << o.unparsed << " exchanges=" << o.exchanges << " tls=[";
  for (const SeenTls& t : o.tls) os << t;
  return os << "]}";
}

// Step i happens at time 100 * (i + 1); the connection closes at 100 * (steps + 1).
// split: -1 whole steps; -2 byte by byte; k >= 0: every step cut at byte k (when longer).
// Through the ProtocolTracker, as the relay drives it.
Outcome run(const std::vector<Step>& steps, long split = -1, bool reset = false) {
  Sink sink;
  {
    ProtocolTracker tracker(sink, 3);
    tracker.set_server_port(8443);
    MonoNanos now = 0;
    for (const Step& s : steps) {
      now += 100;
      auto feed = [&](std::string_view b) {
        if (b.empty()) return;
        if (s.client) {
          tracker.on_client_bytes(b, now);
        } else {
          tracker.on_server_bytes(b, now);
        }
      };
      if (split == -2) {
        for (size_t i = 0; i < s.bytes.size(); ++i) feed(std::string_view(s.bytes).substr(i, 1));
      } else if (split >= 0 && static_cast<size_t>(split) < s.bytes.size()) {
        feed(std::string_view(s.bytes).substr(0, split));
        feed(std::string_view(s.bytes).substr(split));
      } else {
        feed(s.bytes);
      }
    }
    tracker.on_connection_closed(now + 100, reset);
  }
  return {sink.tls, sink.unparsed, sink.exchanges};
}

// The outcome, the same however each step is cut.
Outcome run_all_splits(const std::vector<Step>& steps, bool reset = false) {
  const Outcome whole = run(steps, -1, reset);
  EXPECT_EQ(run(steps, -2, reset), whole) << "byte by byte";
  size_t longest = 0;
  for (const Step& s : steps) longest = std::max(longest, s.bytes.size());
  for (size_t k = 0; k < longest; ++k) {
    const Outcome cut = run(steps, static_cast<long>(k), reset);
    EXPECT_EQ(cut, whole) << "cut at " << k;
    if (cut != whole) break;
  }
  return whole;
}

uint64_t total(const std::vector<Step>& steps, bool client) {
  uint64_t n = 0;
  for (const Step& s : steps)
    if (s.client == client) n += s.bytes.size();
  return n;
}

// The captured TLS 1.3 exchange in its real order: ClientHello; the server's flight;
// the client's CCS, Finished, data; the server's tickets, data.
std::vector<Step> tls13_steps() {
  const auto c = records(unhex(cap::kTls13ClientHex));
  const auto s = records(unhex(cap::kTls13ServerHex));
  return {{true, c[0]},
          {false, join(s, 0, 6)},
          {true, join(c, 1, c.size())},
          {false, join(s, 6, s.size())}};
}

TEST(TlsTracker, CapturedTls13) {
  const auto steps = tls13_steps();
  const Outcome o = run_all_splits(steps);
  EXPECT_EQ(o.unparsed, 0);
  EXPECT_EQ(o.exchanges, 0);
  ASSERT_EQ(o.tls.size(), 1u);
  const SeenTls& t = o.tls[0];
  EXPECT_EQ(t.server_name, "example.test");  // cleaned: lower case
  EXPECT_EQ(t.port, 8443);
  EXPECT_EQ(t.alpn, "");  // TLS 1.3 with two offers: the choice is encrypted
  EXPECT_EQ(t.alpn_offered, "h2,http/1.1");
  EXPECT_EQ(t.version, 0x0304);
  EXPECT_EQ(t.first_byte, 100);
  EXPECT_EQ(t.handshake_done, 300);  // the client's Finished
  EXPECT_EQ(t.closed, 500);
  EXPECT_EQ(t.c2s, total(steps, true));
  EXPECT_EQ(t.s2c, total(steps, false));
  EXPECT_EQ(t.failure, TlsFailure::kNone);
}

TEST(TlsTracker, Tls13SingleAlpnOfferIsTheChoice) {
  // One offer and a completed handshake: the server chose it (or there would be an alert).
  const std::string ch = record(22, handshake(1, client_hello_body(alpn_ext({"http/1.1"}))), 1);
  const std::string sh = record(22, handshake(2, server_hello_body(0x0304)));
  Outcome o = run_all_splits({{true, ch}, {false, sh}, {true, record(23, std::string(53, 'f'))}});
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].alpn, "http/1.1");
  // Not completed: not known.
  o = run({{true, ch}, {false, sh}});
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].alpn, "");
}

TEST(TlsTracker, CapturedTls12) {
  const auto c = records(unhex(cap::kTls12ClientHex));
  const auto s = records(unhex(cap::kTls12ServerHex));
  // ClientHello; ServerHello..ServerHelloDone; the client's key exchange, CCS, Finished;
  // the server's ticket, CCS, Finished; then data and close_notify.
  const std::vector<Step> steps = {
      {true, c[0]},           {false, join(s, 0, 4)},       {true, join(c, 1, 4)},
      {false, join(s, 4, 7)}, {true, join(c, 4, c.size())}, {false, join(s, 7, s.size())}};
  const Outcome o = run_all_splits(steps);
  ASSERT_EQ(o.tls.size(), 1u);
  const SeenTls& t = o.tls[0];
  EXPECT_EQ(t.server_name, "example.test");
  EXPECT_EQ(t.alpn, "http/1.1");
  EXPECT_EQ(t.alpn_offered, "http/1.1");
  EXPECT_EQ(t.version, 0x0303);
  EXPECT_EQ(t.handshake_done, 400);  // the server's Finished
  EXPECT_EQ(t.failure, TlsFailure::kNone);
  EXPECT_EQ(t.c2s, total(steps, true));
  EXPECT_EQ(t.s2c, total(steps, false));
  EXPECT_EQ(o.unparsed, 0);
}

TEST(TlsTracker, CapturedWithoutSni) {
  const auto c = records(unhex(cap::kTls12NosniClientHex));
  const auto s = records(unhex(cap::kTls12NosniServerHex));
  const std::vector<Step> steps = {{true, c[0]},
                                   {false, join(s, 0, 4)},
                                   {true, join(c, 1, 4)},
                                   {false, join(s, 4, s.size())},
                                   {true, join(c, 4, c.size())}};
  const Outcome o = run_all_splits(steps);
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].server_name, "");
  EXPECT_EQ(o.tls[0].alpn, "");
  EXPECT_EQ(o.tls[0].alpn_offered, "");
  EXPECT_EQ(o.tls[0].handshake_done, 400);
}

TEST(TlsTracker, ClientHelloOverSeveralRecords) {
  // A ClientHello may be fragmented over records (RFC 8446 5.1): cut it into 3.
  std::string keep;
  const auto c = records(unhex(cap::kTls13ClientHex));
  const std::string message = c[0].substr(5);
  const std::string fragmented = record(22, message.substr(0, 10), 1) +
                                 record(22, message.substr(10, 100), 1) +
                                 record(22, message.substr(110), 1);
  auto steps = tls13_steps();
  steps[0].bytes = fragmented;
  const Outcome o = run_all_splits(steps);
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].server_name, "example.test");
  EXPECT_EQ(o.tls[0].handshake_done, 300);
}

TEST(TlsTracker, TruncatedClientHelloIsUnparsed) {
  const auto c = records(unhex(cap::kTls13ClientHex));
  for (size_t k = 1; k < c[0].size(); k += 7) {
    const Outcome o = run({{true, c[0].substr(0, k)}});
    EXPECT_EQ(o.unparsed, 1) << k;
    EXPECT_TRUE(o.tls.empty()) << k;
  }
}

TEST(TlsTracker, GarbageAfterTheFirstByteIsUnparsedOnce) {
  for (const std::string& bytes :
       {std::string("\x16\x03\x01\x00\x05hello", 10), std::string("\x16GET / HTTP/1.1\r\n\r\n"),
        std::string("\x16\x03\x01\xff\xff", 5) + std::string(100, 'x'),  // record too long
        record(22, handshake(2, server_hello_body(0)), 1),               // not a ClientHello
        record(23, "x", 1),
        record(22, handshake(1, std::string(20000, 'x')), 1)}) {  // over kMaxHelloBytes
    const Outcome o = run({{true, bytes}, {false, "whatever the server says"}, {true, "more"}});
    EXPECT_EQ(o.unparsed, 1);
    EXPECT_TRUE(o.tls.empty());
    EXPECT_EQ(o.exchanges, 0);
  }
}

TEST(TlsTracker, AlertFromServerInClear) {
  const std::string ch = record(22, handshake(1, client_hello_body(sni_ext("x.test"))), 1);
  const std::string alert = record(21, std::string("\x02\x28", 2));  // fatal handshake_failure
  const Outcome o = run_all_splits({{true, ch}, {false, alert}});
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].failure, TlsFailure::kAlert);
  EXPECT_TRUE(o.tls[0].alert_from_server);
  EXPECT_EQ(o.tls[0].alert_description, 40);
  EXPECT_EQ(o.tls[0].handshake_done, 0);
  EXPECT_EQ(o.tls[0].version, 0);
}

TEST(TlsTracker, EncryptedAlertFromClientInTls13) {
  // The client rejects the server's certificate: its first encrypted record is an alert.
  auto steps = tls13_steps();
  steps[2].bytes = record(20, "\x01") + record(23, std::string(19, 'e'));
  steps.pop_back();
  const Outcome o = run_all_splits(steps);
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].failure, TlsFailure::kAlert);
  EXPECT_FALSE(o.tls[0].alert_from_server);
  EXPECT_EQ(o.tls[0].handshake_done, 0);
  EXPECT_EQ(o.tls[0].version, 0x0304);
}

TEST(TlsTracker, ResetOrCloseBeforeTheEnd) {
  const std::string ch = record(22, handshake(1, client_hello_body("")), 1);
  Outcome o = run({{true, ch}}, -1, /*reset=*/true);
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].failure, TlsFailure::kReset);
  o = run({{true, ch}, {false, record(22, handshake(2, server_hello_body(0)))}});
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].failure, TlsFailure::kClosed);
  EXPECT_EQ(o.tls[0].version, 0x0303);
  // After the end, a reset is not a handshake failure.
  o = run(tls13_steps(), -1, /*reset=*/true);
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].failure, TlsFailure::kNone);
}

TEST(TlsTracker, HelloRetryRequest) {
  const std::string ch = record(22, handshake(1, client_hello_body(sni_ext("h.test"))), 1);
  const std::vector<Step> steps = {
      {true, ch},
      {false, record(22, handshake(2, server_hello_body(0x0304, "", true))) + record(20, "\x01")},
      {true, ch},
      {false, record(22, handshake(2, server_hello_body(0x0304, "h2"))) +
                  record(23, std::string(50, 'e'))},
      {true, record(23, std::string(53, 'f'))},
  };
  const Outcome o = run_all_splits(steps);
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].version, 0x0304);
  EXPECT_EQ(o.tls[0].alpn, "h2");
  EXPECT_EQ(o.tls[0].handshake_done, 500);
  EXPECT_EQ(o.tls[0].failure, TlsFailure::kNone);
}

TEST(TlsTracker, MalformedServerStopsFollowingButStillCounts) {
  const std::string ch = record(22, handshake(1, client_hello_body(sni_ext("m.test"))), 1);
  const Outcome o = run({{true, ch}, {false, "HTTP/1.1 400 Bad Request\r\n\r\n"}});
  EXPECT_EQ(o.unparsed, 0);
  ASSERT_EQ(o.tls.size(), 1u);
  EXPECT_EQ(o.tls[0].server_name, "m.test");
  EXPECT_EQ(o.tls[0].failure, TlsFailure::kNone);  // not followed to the end: no verdict
  EXPECT_EQ(o.tls[0].handshake_done, 0);
}

TEST(TlsTracker, UpstreamUnreachable) {
  Sink sink;
  {
    ProtocolTracker tracker(sink, 1);
    const std::string ch = record(22, handshake(1, client_hello_body("")), 1);
    tracker.on_client_bytes(ch, 10);
    tracker.on_upstream_failed(20);
    tracker.on_connection_closed(20, true);
    EXPECT_EQ(tracker.choice(), WireChoice::kTls);
  }
  ASSERT_EQ(sink.tls.size(), 1u);
  EXPECT_EQ(sink.tls[0].failure, TlsFailure::kUpstreamFailed);
}

TEST(TlsTracker, HttpIsNotTls) {
  const Outcome o = run({{true, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
                         {false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}});
  EXPECT_TRUE(o.tls.empty());
  EXPECT_EQ(o.exchanges, 1);
  EXPECT_EQ(o.unparsed, 0);
}

// ---- the store -----------------------------------------------------------------------------

TlsConnection connection(uint32_t scope, std::string_view name, MonoNanos handshake,
                         TlsFailure failure = TlsFailure::kNone) {
  TlsConnection c;
  c.scope = scope;
  c.port = 443;
  c.server_name = name;
  c.alpn = "h2";
  c.version = 0x0304;
  c.first_byte = 1'000'000;
  c.handshake_done = handshake ? c.first_byte + handshake : 0;
  c.closed = c.first_byte + 50'000'000;
  c.bytes_client_to_server = 100;
  c.bytes_server_to_client = 1000;
  c.failure = failure;
  return c;
}

TEST(TlsStore, MergeIsExact) {
  TlsStore a, b, all, merged;
  for (int i = 0; i < 50; ++i) {
    const TlsConnection c = connection(i % 2, i % 3 ? "a.test" : "b.test", (i + 1) * 100'000,
                                       i % 7 ? TlsFailure::kNone : TlsFailure::kReset);
    (i % 4 ? a : b).record(c);
    all.record(c);
  }
  merged.merge_from(a);
  merged.merge_from(b);
  a.clear_counts();
  EXPECT_FALSE(a.has_counts());
  EXPECT_TRUE(a.snapshot().empty());
  const auto x = merged.snapshot(), y = all.snapshot();
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i].key, y[i].key);
    EXPECT_EQ(x[i].connections, y[i].connections);
    EXPECT_EQ(x[i].failures, y[i].failures);
    EXPECT_EQ(x[i].handshakes, y[i].handshakes);
    EXPECT_EQ(x[i].handshake_buckets, y[i].handshake_buckets);
    EXPECT_EQ(x[i].bytes_server_to_client, y[i].bytes_server_to_client);
    for (int q = 0; q < 6; ++q) EXPECT_DOUBLE_EQ(x[i].handshake_us[q], y[i].handshake_us[q]);
  }
}

TEST(TlsStore, EntriesAreCapped) {
  TlsStore store(3);
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("n" + std::to_string(i) + ".test");
  for (const auto& n : names) store.record(connection(0, n, 1000));
  const auto snap = store.snapshot();
  EXPECT_EQ(snap.size(), 4u);  // 3 + the overflow entry
  uint64_t total = 0, overflow = 0;
  for (const auto& t : snap) {
    total += t.connections;
    if (t.overflow) overflow += t.connections;
  }
  EXPECT_EQ(total, 10u);
  EXPECT_EQ(overflow, 7u);
  EXPECT_EQ(store.erase_scope(0), 3u);  // the overflow entry stays
}

}  // namespace
}  // namespace netprof
