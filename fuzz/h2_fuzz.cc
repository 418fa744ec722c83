// libFuzzer target: the per-connection ProtocolTracker (so the HTTP/2 tracker, the h2c upgrade
// path and the HTTP/1 fallback) fed arbitrary bytes in arbitrary splits, both directions, with
// end-of-stream, close and reset events anywhere. Same input format as tracker_fuzz.cc:
//   byte 0: limits (a small path limit reaches truncation quickly)
//   then repeated: one op byte, and for byte ops a length byte and that many bytes.
// Op byte bit 3 on a client-bytes op prepends the HTTP/2 preface once, so that most inputs
// get past the preface and exercise the frame reader. Also built as a replay binary.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "connection_ops.h"
#include "http2/protocol_tracker.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "h2_fuzz: invariant broken: %s\n", what);
  std::abort();
}

class CheckingSink final : public netprof::ExchangeSink {
 public:
  explicit CheckingSink(size_t max_path) : max_path_(max_path) {}
  void on_exchange(const netprof::Exchange& e) override {
    request_bytes += e.request_bytes;
    response_bytes += e.response_bytes;
    for (char c : e.path) checksum += static_cast<unsigned char>(c);
    for (char c : e.reason) checksum += static_cast<unsigned char>(c);
    if (e.path.size() > max_path_) fail("path longer than max_path_bytes");
    if (e.outcome == netprof::ExchangeOutcome::kCompleted && e.response_done == 0)
      fail("completed exchange without response_done");
    if (e.response_done != 0 && e.response_done < e.request_first_byte)
      fail("response done before the request started");
    if (e.request_body_bytes > e.request_bytes) fail("request body larger than the request");
    if (e.response_body_bytes > e.response_bytes) fail("response body larger than the response");
    if (e.grpc_status > 255) fail("grpc status out of range");
  }
  void on_unparsed_connection(uint32_t) override {
    if (++unparsed > 1) fail("connection reported unparsed twice");
  }
  uint64_t checksum = 0, request_bytes = 0, response_bytes = 0;
  int unparsed = 0;

 private:
  size_t max_path_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  netprof::TrackerLimits limits;
  if (data[0] & 1) limits.max_path_bytes = 1 + (data[0] >> 4);
  CheckingSink sink(limits.max_path_bytes);
  netprof::fuzz::Played played;
  {
    netprof::ProtocolTracker tracker(sink, 7, limits);
    netprof::MonoNanos now = 1000;
    netprof::fuzz::ConnectionOps ops(data, size, 1);
    bool preface_sent = false;
    using Kind = netprof::fuzz::ConnectionOp::Kind;
    played = netprof::fuzz::play(
        ops, tracker, now,
        [&](const auto& op, netprof::MonoNanos at, netprof::fuzz::Played& so_far) {
          // The flag sends the client preface first, once: reaching HTTP/2 by chance is rare.
          if (op.kind == Kind::kClientBytes && op.flag && !preface_sent) {
            preface_sent = true;
            so_far.client_bytes += netprof::kHttp2Preface.size();
            tracker.on_client_bytes(netprof::kHttp2Preface, at);
          }
          if (op.kind == Kind::kSix) {  // a half-close
            if (op.flag) {
              tracker.on_client_eof(at);
            } else {
              tracker.on_server_eof(at);
            }
          }
        });
    if (!played.closed && (size & 1)) tracker.on_connection_closed(now, false);
  }
  // Frame bytes are attributed to at most one stream each (an upgraded stream 1 carries the
  // HTTP/1.1 request's bytes, which are client bytes too).
  if (sink.request_bytes > played.client_bytes)
    fail("more request bytes counted than the client sent");
  if (sink.response_bytes > played.server_bytes)
    fail("more response bytes counted than the server sent");
  return 0;
}
