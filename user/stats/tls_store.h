// Per-TLS-endpoint statistics: one entry per (scope, server port, server name, ALPN choice,
// version, ALPN offers), bounded in number (past max_entries, new keys go to one "{overflow}"
// entry, as routes do). Like RouteStore, not thread-safe on purpose: each relay worker records into
// its own (double-buffered, pipeline/exchange_pipeline.h) and the StatsHub merges them exactly into
// its cumulative one; readers see TlsSummary snapshots only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "stats/histogram.h"
#include "tls/connection.h"

namespace netprof {

// Upper bounds (seconds) of the handshake duration histogram of /metrics. Handshakes are
// milliseconds on a LAN, tens to hundreds of them across regions.
inline const std::vector<double>& tls_handshake_buckets_s() {
  static const std::vector<double> bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return bounds;
}

struct TlsKey {
  uint32_t scope = 0;
  uint16_t port = 0;
  std::string server_name;   // "" without SNI; "{overflow}" for the overflow entry
  std::string alpn;          // the server's choice; "" when none or not visible (TLS 1.3)
  uint16_t version = 0;      // 0 when no ServerHello was seen
  std::string alpn_offered;  // the client's offers, comma-separated
  auto operator<=>(const TlsKey&) const = default;
};

struct TlsStats {
  uint64_t connections = 0;
  uint64_t handshakes = 0;  // connections whose handshake was seen to complete
  uint64_t failures = 0;
  // failures by kind, indexed by TlsFailure (kNone unused)
  std::array<uint64_t, 5> failure_kinds{};
  uint64_t bytes_client_to_server = 0, bytes_server_to_client = 0;
  LatencyHistogram handshake_us;            // completed handshakes, microseconds
  LatencyHistogram duration_us;             // every connection, first byte -> close, microseconds
  std::vector<uint64_t> handshake_buckets;  // tls_handshake_buckets_s() + 1 (above the last)
  double handshake_sum_s = 0;
};

// One entry as the outputs read it.
struct TlsSummary {
  TlsKey key;
  bool overflow = false;
  uint64_t connections = 0, handshakes = 0, failures = 0;
  std::array<uint64_t, 5> failure_kinds{};
  uint64_t bytes_client_to_server = 0, bytes_server_to_client = 0;
  // min/mean/p50/p90/p99/max in microseconds (as DurationSummary)
  uint64_t handshake_samples = 0;
  double handshake_us[6] = {};
  double duration_us[6] = {};
  std::vector<uint64_t> handshake_buckets;
  double handshake_sum_s = 0;
};

class TlsStore {
 public:
  static constexpr size_t kDefaultMaxEntries = 1000;
  explicit TlsStore(size_t max_entries = kDefaultMaxEntries) : max_entries_(max_entries) {}

  void record(const TlsConnection& connection);
  // Adds every entry of `delta` that counted something (exact: counts add, histograms merge).
  void merge_from(const TlsStore& delta);
  // Zeroes every count, keeping keys and allocations.
  void clear_counts();
  bool has_counts() const { return has_counts_; }
  // Entries with a non-zero count, ordered by key.
  std::vector<TlsSummary> snapshot() const;
  size_t erase_scope(uint32_t scope);
  size_t size() const { return entries_.size(); }

 private:
  TlsStats& entry(const TlsKey& key);
  const size_t max_entries_;
  std::map<TlsKey, TlsStats> entries_;
  bool has_counts_ = false;
};

}  // namespace netprof
