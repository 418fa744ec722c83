// libFuzzer target: HttpTracker fed arbitrary bytes, in arbitrary splits, in both directions,
// with end-of-stream, close and reset events anywhere. The input is a program:
//   byte 0: tracker limits (small limits reach the caps and fallbacks quickly)
//   then repeated: one op byte, and for byte ops a length byte and that many bytes.
// The sink touches every byte of every view (ASan catches views into freed memory) and
// checks what the tracker promises. Built with -fsanitize=fuzzer,address,undefined, and also
// as a plain replay binary (replay_main.cc) that ctest runs over fuzz/regressions/.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "connection_ops.h"
#include "http/tracker.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tracker_fuzz: invariant broken: %s\n", what);
  std::abort();
}

class CheckingSink final : public netprof::ExchangeSink {
 public:
  explicit CheckingSink(const netprof::TrackerLimits& limits) : limits_(limits) {}

  void on_exchange(const netprof::Exchange& e) override {
    ++exchanges;
    request_bytes += e.request_bytes;
    response_bytes += e.response_bytes;
    for (char c : e.path) checksum += static_cast<unsigned char>(c);
    for (char c : e.reason) checksum += static_cast<unsigned char>(c);
    if (e.path.size() > limits_.max_path_bytes) fail("path longer than max_path_bytes");
    if (e.path_truncated && e.path.size() != limits_.max_path_bytes)
      fail("truncated path not cut at the limit");
    if (e.outcome == netprof::ExchangeOutcome::kCompleted && e.response_done == 0)
      fail("completed exchange without response_done");
    if (e.response_done != 0 && e.response_done < e.request_first_byte)
      fail("response done before the request started");
    // The fuzzer's clock starts at 1000: a latency above it was measured from an unset 0.
    if (e.latency() < 0 || e.total_time() < 0) fail("negative latency");
    if ((e.response_headers_done != 0 && e.latency() > e.response_headers_done - 1000) ||
        (e.response_done != 0 && e.total_time() > e.response_done - 1000))
      fail("latency measured from an unset timestamp");
    if (e.outcome == netprof::ExchangeOutcome::kCompleted && (e.status < 100 || e.status > 599))
      fail("completed exchange with a status outside 100-599");
    if (e.request_body_bytes > e.request_bytes) fail("request body larger than the request");
    if (e.response_body_bytes > e.response_bytes) fail("response body larger than the response");
  }
  void on_unparsed_connection(uint32_t) override {
    if (++unparsed > 1) fail("connection reported unparsed twice");
  }

  uint64_t exchanges = 0, checksum = 0, request_bytes = 0, response_bytes = 0;
  int unparsed = 0;

 private:
  netprof::TrackerLimits limits_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  netprof::TrackerLimits limits;
  const uint8_t config = data[0];
  if (config & 1) limits.max_path_bytes = 1 + (config >> 4);
  if (config & 2) limits.max_pipelined = 1 + ((config >> 2) & 3);
  if (config & 4) limits.max_held_bytes = 1 + (config >> 3);
  CheckingSink sink(limits);
  netprof::fuzz::Played played;
  {
    netprof::HttpTracker tracker(sink, 7, limits);
    netprof::MonoNanos now = 1000;
    netprof::fuzz::ConnectionOps ops(data, size, 1);
    played =
        netprof::fuzz::play(ops, tracker, now, [&](const auto& op, netprof::MonoNanos at, auto&) {
          if (op.kind != netprof::fuzz::ConnectionOp::Kind::kSix) return;
          if (op.flag) {  // a half-close
            tracker.on_client_eof(at);
          } else {
            tracker.on_server_eof(at);
          }
        });
    if (played.closed && tracker.pending_requests() != 0) fail("requests pending after close");
    if (!played.closed && (size & 1)) tracker.on_connection_closed(now, false);
  }
  // Bytes are attributed to at most one exchange each.
  if (sink.request_bytes > played.client_bytes)
    fail("more request bytes counted than the client sent");
  if (sink.response_bytes > played.server_bytes)
    fail("more response bytes counted than the server sent");
  return 0;
}
