#include "tls/tracker.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "tls/connection.h"
#include "tls/hello.h"

namespace netprof {
namespace {

// The shortest TLS 1.3 Finished record body: 32 bytes of verify_data (SHA-256), the inner
// content type byte, an 8-byte tag (AES-CCM-8, the shortest of the TLS 1.3 suites).
constexpr size_t kMinEncryptedFinishedBytes = 32 + 1 + 8;
constexpr uint16_t kTls13 = 0x0304;

// One direction's record layer.
struct Side {
  uint8_t header[tls::kRecordHeaderBytes] = {};
  size_t header_have = 0;
  size_t body_left = 0;  // of the current record
  size_t body_length = 0;
  uint8_t type = 0;   // of the current record
  std::string hello;  // handshake bytes collected until the hello is read
  bool collecting = true;
  uint8_t alert[2] = {};  // the current alert record's first bytes
  size_t alert_have = 0;
};

}  // namespace

struct TlsTracker::Impl {
  Impl(ExchangeSink& s, uint32_t sc, uint16_t p) : sink(s), scope(sc), port(p) {}

  ExchangeSink& sink;
  const uint32_t scope;
  uint16_t port;
  Side client, server;

  bool following = true;      // records are still read
  bool client_hello = false;  // read: a TLS connection
  bool server_hello = false;  // read (not a HelloRetryRequest)
  bool unparsed = false;
  bool reported = false;
  bool server_ccs = false;  // TLS <= 1.2: the server's ChangeCipherSpec seen
  bool after_ccs_record = false;

  std::string server_name, alpn, alpn_offered;
  size_t alpn_offers = 0;
  uint16_t version = 0, cipher = 0;
  MonoNanos first_byte = 0, done = 0;
  uint64_t bytes_c2s = 0, bytes_s2c = 0;
  TlsFailure failure = TlsFailure::kNone;
  bool alert_from_server = false;
  uint8_t alert_description = 0;

  void stop() {
    following = false;
    std::string().swap(client.hello);
    std::string().swap(server.hello);
  }

  void malformed() {
    if (!client_hello && !unparsed) {
      unparsed = true;
      sink.on_unparsed_connection(scope);
    }
    stop();
  }

  void fail(TlsFailure f) {
    failure = f;
    stop();
  }

  void feed(Side& side, bool from_client, std::span<const char> bytes, MonoNanos now) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    size_t n = bytes.size();
    while (n > 0 && following) {
      if (side.header_have < tls::kRecordHeaderBytes) {
        const size_t take = std::min(n, tls::kRecordHeaderBytes - side.header_have);
        std::copy(p, p + take, side.header + side.header_have);
        side.header_have += take;
        p += take;
        n -= take;
        if (side.header_have < tls::kRecordHeaderBytes) return;
        side.type = side.header[0];
        side.body_length = size_t{side.header[3]} << 8 | side.header[4];
        side.body_left = side.body_length;
        side.alert_have = 0;
        if (side.type < tls::kChangeCipherSpec || side.type > tls::kHeartbeat ||
            side.header[1] != 3 || side.body_length > tls::kMaxRecordBodyBytes) {
          malformed();
          return;
        }
        record_start(side, from_client, now);
        if (side.body_left == 0 && following) record_end(side, from_client, now);
        continue;
      }
      const size_t take = std::min(n, side.body_left);
      if (side.type == tls::kHandshake && side.collecting) {
        collect(side, from_client, p, take);
      } else if (side.type == tls::kAlert) {
        for (size_t i = 0; i < take && side.alert_have < 2; ++i)
          side.alert[side.alert_have++] = p[i];
      }
      p += take;
      n -= take;
      side.body_left -= take;
      if (side.body_left == 0 && following) record_end(side, from_client, now);
    }
  }

  void record_start(Side& side, bool from_client, MonoNanos now) {
    if (from_client && !client_hello && side.type != tls::kHandshake) {
      malformed();  // a TLS client starts with its ClientHello
      return;
    }
    if (!client_hello) return;
    if (side.type == tls::kAlert) return;  // judged at its end (its description is in the body)
    if (from_client && server_hello && version == kTls13 && side.type == tls::kApplicationData) {
      if (side.body_length < kMinEncryptedFinishedBytes) {
        alert_from_server = false;
        fail(TlsFailure::kAlert);  // an encrypted alert: the client gave up on the server
      } else {
        done = now;
        stop();
      }
      return;
    }
    if (!from_client && server_hello && version != kTls13) {
      if (server_ccs) after_ccs_record = true;
      if (side.type == tls::kChangeCipherSpec) server_ccs = true;
    }
  }

  void record_end(Side& side, bool from_client, MonoNanos now) {
    side.header_have = 0;
    if (!client_hello) return;
    if (side.type == tls::kAlert && done == 0) {
      alert_from_server = !from_client;
      // A plaintext alert is 2 bytes (level, description); a longer one is encrypted.
      alert_description = side.body_length == 2 && side.alert_have == 2 ? side.alert[1] : 0;
      fail(TlsFailure::kAlert);
      return;
    }
    if (!from_client && after_ccs_record) {
      done = now;  // the server's Finished: its last handshake flight is complete
      stop();
    }
  }

  void collect(Side& side, bool from_client, const uint8_t* p, size_t n) {
    if (side.hello.size() + n > kMaxHelloBytes + 4) n = kMaxHelloBytes + 4 - side.hello.size();
    side.hello.append(reinterpret_cast<const char*>(p), n);
    while (side.collecting && following && side.hello.size() >= 4) {
      const auto* h = reinterpret_cast<const uint8_t*>(side.hello.data());
      const size_t length = size_t{h[1]} << 16 | size_t{h[2]} << 8 | h[3];
      const uint8_t expected = from_client ? tls::kClientHelloType : tls::kServerHelloType;
      if (h[0] != expected || length + 4 > kMaxHelloBytes) {
        malformed();
        return;
      }
      if (side.hello.size() < length + 4) return;
      const std::span<const uint8_t> body(h + 4, length);
      if (from_client) {
        tls::ClientHello hello;
        if (!tls::parse_client_hello(body, hello)) {
          malformed();
          return;
        }
        client_hello = true;
        server_name = tls::clean_server_name(hello.server_name);
        alpn_offers = hello.alpn.size();
        for (const std::string& id : hello.alpn) {
          if (!alpn_offered.empty()) alpn_offered += ',';
          alpn_offered += tls::clean_alpn(id);
        }
        side.collecting = false;
        std::string().swap(side.hello);
        return;
      }
      tls::ServerHello hello;
      if (!tls::parse_server_hello(body, hello)) {
        malformed();
        return;
      }
      version = hello.version;
      cipher = hello.cipher_suite;
      alpn = hello.alpn.empty() ? std::string() : tls::clean_alpn(hello.alpn);
      if (hello.hello_retry_request) {
        // The client sends a second ClientHello; the real ServerHello is the next message.
        side.hello.erase(0, length + 4);
        continue;
      }
      server_hello = true;
      side.collecting = false;
      std::string().swap(side.hello);
    }
  }

  void report(MonoNanos now) {
    if (reported) return;
    reported = true;
    if (!client_hello) {
      if (!unparsed) {
        unparsed = true;
        sink.on_unparsed_connection(scope);
      }
      return;
    }
    // TLS 1.3 sends the server's ALPN choice encrypted (EncryptedExtensions). A completed
    // handshake with a single offer can only have chosen that one (or ignored ALPN altogether,
    // which servers that speak ALPN do not do).
    if (version == kTls13 && alpn.empty() && done != 0 && alpn_offers == 1) alpn = alpn_offered;
    TlsConnection c;
    c.scope = scope;
    c.port = port;
    c.server_name = server_name;
    c.alpn = alpn;
    c.alpn_offered = alpn_offered;
    c.version = version;
    c.cipher_suite = cipher;
    c.first_byte = first_byte;
    c.handshake_done = done;
    c.closed = now;
    c.bytes_client_to_server = bytes_c2s;
    c.bytes_server_to_client = bytes_s2c;
    c.failure = failure;
    c.alert_from_server = alert_from_server;
    c.alert_description = alert_description;
    sink.on_tls_connection(c);
  }
};

TlsTracker::TlsTracker(ExchangeSink& sink, uint32_t scope, uint16_t server_port)
    : impl_(std::make_unique<Impl>(sink, scope, server_port)) {}

TlsTracker::~TlsTracker() = default;

void TlsTracker::on_client_bytes(std::span<const char> bytes, MonoNanos now) {
  Impl& t = *impl_;
  if (bytes.empty()) return;
  if (t.first_byte == 0) t.first_byte = now;
  t.bytes_c2s += bytes.size();
  if (t.following) t.feed(t.client, true, bytes, now);
}

void TlsTracker::on_server_bytes(std::span<const char> bytes, MonoNanos now) {
  Impl& t = *impl_;
  t.bytes_s2c += bytes.size();
  if (t.following) t.feed(t.server, false, bytes, now);
}

void TlsTracker::on_connection_closed(MonoNanos now, bool reset) {
  Impl& t = *impl_;
  if (t.following && t.client_hello && t.done == 0 && t.failure == TlsFailure::kNone)
    t.failure = reset ? TlsFailure::kReset : TlsFailure::kClosed;
  t.stop();
  t.report(now);
}

void TlsTracker::on_upstream_failed(MonoNanos /*now*/) {
  Impl& t = *impl_;
  if (t.client_hello && t.done == 0 && t.failure == TlsFailure::kNone)
    t.fail(TlsFailure::kUpstreamFailed);
}

void TlsTracker::set_server_port(uint16_t port) { impl_->port = port; }
bool TlsTracker::is_tls() const { return impl_->client_hello; }
bool TlsTracker::unparsed() const { return impl_->unparsed; }
bool TlsTracker::following() const { return impl_->following; }

}  // namespace netprof
