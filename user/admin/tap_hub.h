// Individual exchanges for `/tap`, as they happen. The relay thread copies each exchange
// into a fixed ring (no allocation, one short uncontended lock, nothing at all while nobody
// listens); each subscriber reads the ring at its own pace on its own thread, filters,
// rate-limits and formats JSON lines. A subscriber that falls a whole ring behind skips
// ahead and is told how many it missed: a slow tap never slows the relay.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "export/routed_tee.h"
#include "http/trace_id.h"

namespace netprof {

// One exchange, or one TLS connection (`tls`), as the tap keeps it. Strings are truncated to
// fixed buffers. A TLS record reuses the fields: route = server name, path = ALPN offers,
// latency = handshake time, total = connection duration, request/response bytes = bytes each way.
struct TapRecord {
  static constexpr size_t kMaxRoute = 256, kMaxPath = 512, kMaxAlpn = 32;
  uint64_t seq = 0;
  int64_t started_ms = 0;  // wall clock epoch ms of the request's first byte
  uint32_t scope = 0;
  uint8_t method = 0;
  uint16_t status = 0;
  ExchangeOutcome outcome = ExchangeOutcome::kCompleted;
  bool path_truncated = false;
  int64_t latency_ns = 0, total_ns = 0;
  uint64_t request_bytes = 0, response_bytes = 0, request_body_bytes = 0, response_body_bytes = 0;
  uint64_t connection_id = 0;  // with sequence: the request id (request_id_text)
  uint32_t sequence = 0;
  uint8_t trace_len = 0;
  char trace_id[kMaxTraceIdBytes];
  uint16_t route_len = 0, path_len = 0;
  char route[kMaxRoute];
  char path[kMaxPath];
  bool tls = false;
  uint16_t tls_port = 0, tls_version = 0;
  uint8_t tls_failure = 0;  // TlsFailure
  uint8_t alpn_len = 0;
  char alpn[kMaxAlpn];

  std::string_view route_view() const { return {route, route_len}; }
  std::string_view path_view() const { return {path, path_len}; }
  std::string_view trace_view() const { return {trace_id, trace_len}; }
};

// What one subscriber wants.
struct TapFilter {
  std::string route;             // exact route, or a prefix when it ends with '*'; empty = all
  std::string method;            // empty = all
  std::vector<std::string> status;  // "404", "5xx", "error" (no response); empty = all
  bool raw_path = false;         // include the request path (query kept only with --keep-query)
  double max_per_second = 100;   // token bucket; excess lines are counted as dropped
  uint64_t limit = 0;            // stop after this many lines; 0 = until the client leaves

  // Returns an error text for malformed status filters, else empty.
  static std::string parse_status(std::string_view text, std::vector<std::string>& out);
  bool matches(const TapRecord& r) const;
};

struct TapStats {
  uint64_t subscribers = 0;
  uint64_t published = 0;  // exchanges copied into the ring (only while someone listens)
  uint64_t dropped = 0;    // lines subscribers lost: rate limit or fell behind the ring
};

class TapHub final : public RoutedSink {
 public:
  // `epoch_ms` turns a monotonic timestamp into wall-clock ms (RouteStore::epoch_ms).
  TapHub(size_t ring_size, bool keep_query, std::function<int64_t(MonoNanos)> epoch_ms);
  ~TapHub() override;

  void on_routed_exchange(const Exchange& exchange, std::string_view route) override;
  // One tap line per TLS connection, at its close. TLS lines pass filters that name no route,
  // method or status (or status "error", for failed handshakes).
  void on_tls_connection(const TlsConnection& connection) override;

  class Subscription;
  std::unique_ptr<Subscription> subscribe();
  TapStats stats() const;
  // Memory the ring holds: none until the first subscriber.
  size_t ring_bytes() const;

  // One JSON line (with '\n') for a record, per the filter's raw_path choice.
  std::string format(const TapRecord& r, bool raw_path) const;

 private:
  friend class Subscription;
  bool keep_query_;
  std::function<int64_t(MonoNanos)> epoch_ms_;
  mutable std::mutex mu_;
  size_t ring_size_;
  std::vector<TapRecord> ring_;  // guarded by mu_; empty until the first subscriber
  uint64_t next_seq_ = 1;        // guarded by mu_
  std::atomic<uint64_t> subscribers_{0}, published_{0}, dropped_{0};
};

class TapHub::Subscription {
 public:
  explicit Subscription(TapHub& hub);
  ~Subscription();
  // Copies up to `max` records newer than the last one read into `out` (cleared first).
  // Returns how many were skipped because the ring wrapped past them.
  uint64_t read(std::vector<TapRecord>& out, size_t max);
  void count_dropped(uint64_t n) { hub_.dropped_.fetch_add(n, std::memory_order_relaxed); }

 private:
  TapHub& hub_;
  uint64_t next_ = 0;  // next seq to read
};

}  // namespace netprof
