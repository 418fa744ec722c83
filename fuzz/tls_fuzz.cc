// libFuzzer target: the TLS hello parser and the TLS connection tracker, through the
// per-connection ProtocolTracker (a first client byte 0x16 chooses TLS), fed arbitrary bytes in
// arbitrary splits, both directions, with close and reset anywhere. Input format:
//   byte 0: bit 0 set -> the rest is also parsed directly as a ClientHello and a ServerHello body
//   then repeated: one op byte, and for byte ops a length byte and that many bytes
//   (op & 7: 0-2 client bytes, 3-5 server bytes, 6 upstream failed, 7 close; op & 8: reset;
//   op >> 4: time step). Also built as a replay binary (fuzz/replay_main.cc).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

#include "connection_ops.h"
#include "http2/protocol_tracker.h"
#include "tls/connection.h"
#include "tls/hello.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tls_fuzz: invariant broken: %s\n", what);
  std::abort();
}

bool clean_name(std::string_view s) {
  if (s == "{invalid}") return true;
  if (s.size() > netprof::tls::kMaxServerNameBytes) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
          c == '*'))
      return false;
  }
  return true;
}

class CheckingSink final : public netprof::ExchangeSink {
 public:
  void on_exchange(const netprof::Exchange&) override { ++exchanges; }
  void on_unparsed_connection(uint32_t) override {
    if (++unparsed > 1) fail("connection reported unparsed twice");
  }
  void on_tls_connection(const netprof::TlsConnection& c) override {
    if (++tls > 1) fail("TLS connection reported twice");
    if (!clean_name(c.server_name)) fail("server name not cleaned");
    for (char ch : c.alpn)
      if (ch < 0x21 || ch > 0x7e) fail("alpn not cleaned");
    if (c.handshake_done != 0 && c.handshake_done < c.first_byte)
      fail("handshake ends before it starts");
    if (c.handshake_done != 0 && c.failure != netprof::TlsFailure::kNone)
      fail("a completed handshake counted as failed");
    if (c.closed < c.first_byte) fail("closed before the first byte");
    bytes_c2s = c.bytes_client_to_server;
    bytes_s2c = c.bytes_server_to_client;
  }
  int unparsed = 0, tls = 0, exchanges = 0;
  uint64_t bytes_c2s = 0, bytes_s2c = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 1) {
    const std::span<const uint8_t> rest(data + 1, size - 1);
    netprof::tls::ClientHello ch;
    if (netprof::tls::parse_client_hello(rest, ch)) {
      if (ch.server_name.size() > netprof::tls::kMaxServerNameBytes) fail("long server name");
      if (ch.alpn.size() > netprof::tls::kMaxAlpnOffers) fail("too many ALPN offers");
      for (const auto& id : ch.alpn)
        if (id.size() > netprof::tls::kMaxAlpnBytes) fail("long ALPN id");
      if (!clean_name(netprof::tls::clean_server_name(ch.server_name))) fail("clean_server_name");
    }
    netprof::tls::ServerHello sh;
    if (netprof::tls::parse_server_hello(rest, sh) && sh.alpn.size() > netprof::tls::kMaxAlpnBytes)
      fail("long ALPN choice");
  }
  CheckingSink sink;
  netprof::fuzz::Played played;
  bool tls_chosen = false;
  {
    netprof::ProtocolTracker tracker(sink, 7);
    tracker.set_server_port(443);
    netprof::MonoNanos now = 1000;
    netprof::fuzz::ConnectionOps ops(data, size, 1);
    // Whether TLS was chosen after any op: looked at before each one and after the last.
    auto chosen = [&] { tls_chosen = tls_chosen || tracker.choice() == netprof::WireChoice::kTls; };
    played =
        netprof::fuzz::play(ops, tracker, now, [&](const auto& op, netprof::MonoNanos at, auto&) {
          chosen();
          if (op.kind == netprof::fuzz::ConnectionOp::Kind::kSix) tracker.on_upstream_failed(at);
        });
    chosen();
    if (!played.closed) tracker.on_connection_closed(now, false);
  }
  if (tls_chosen) {
    if (sink.tls + sink.unparsed != 1) fail("a TLS connection is counted once: TLS or unparsed");
    if (sink.exchanges != 0) fail("exchanges on a TLS connection");
    if (sink.tls == 1 && sink.bytes_c2s != played.client_bytes)
      fail("client bytes not all counted");
    if (sink.tls == 1 && sink.bytes_s2c != played.server_bytes)
      fail("server bytes not all counted");
  }
  return 0;
}
