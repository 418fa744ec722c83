// The flight recorder: per route, the slowest exchanges of the current and the previous window
// (the report interval) and the most recent failures, each with the timing breakdown only the
// relay can see. Evidence behind the aggregates, at a fixed memory cost per route: at most
// `per_route` records in each list, whatever the traffic.
//
// Two halves, like the rest of the stats (pipeline/exchange_pipeline.h):
// - FlightCandidates, in a relay worker's delta store: what the worker saw since its last
//   hand-over. The hot path compares one duration with the route's current threshold; a record
//   is copied only when it beats the route's Nth slowest or is a failure, into vectors that keep
//   their capacity across hand-overs (no allocation per exchange). A route idle for a whole
//   hand-over gives its lists back (RouteStore::clear_counts), so workers hold memory only for
//   the routes they are serving.
// - FlightView, in the aggregator's cumulative store: immutable, replaced (copy on write) when a
//   merge changes it, so a snapshot shares it instead of copying records. Readers never touch
//   either half.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.h"
#include "http/trace_id.h"

namespace netprof {

struct FlightOptions {
  size_t per_route = 0;                    // records per list and route; 0 = the recorder is off
  bool raw_path = false;                   // keep the request's path (else only the route is known)
  bool keep_query = false;                 // ... with its query string
  static constexpr size_t kMaxPath = 512;  // longer paths are cut (and flagged)
};

// A record's text, allocated only when there is some (a trace id, or the path with
// FlightOptions::raw_path) and shared by the record's copies: most records have none, and a
// fixed 64-byte trace id buffer in every record was a third of its size.
struct FlightText {
  std::string trace_id;
  std::string path;  // with FlightOptions::raw_path only (query only with keep_query)
};

// One exchange as the recorder keeps it (128 bytes). The timeline is kept as microseconds
// from the request's first byte (kNotSeen: that step did not happen or is unknown).
struct FlightRecord {
  static constexpr int32_t kNotSeen = INT32_MIN;
  enum Step : uint8_t {
    kAccepted,           // the connection was accepted (new connections only; negative)
    kRequestHead,        // request head complete
    kUpstreamConnected,  // new connections only
    kRequestSent,        // the request's last byte was written upstream
    kResponseHead,       // response head complete: the origin's latency ends
    kLastByte,           // the response's last byte; a failure's: when it was given up
    kSteps
  };
  int64_t started_ms = 0;    // wall clock of the request's first byte
  MonoNanos first_byte = 0;  // CLOCK_MONOTONIC: orders failures
  MonoNanos duration = 0;    // what ranks it: to the last byte, else to the response head;
                             // a failure without one: until it was given up
  int32_t at_us[kSteps] = {kNotSeen, kNotSeen, kNotSeen, kNotSeen, kNotSeen, kNotSeen};
  uint32_t relay_held_us = 0;  // how long bytes waited in netprof's buffers
  uint32_t sequence = 0;       // the nth request on its connection
  uint64_t connection_id = 0;
  uint64_t request_bytes = 0, response_bytes = 0;
  uint16_t status = 0;
  int16_t grpc_status = -1;
  uint8_t method = 0;
  ExchangeOutcome outcome = ExchangeOutcome::kCompleted;
  WireProtocol protocol = WireProtocol::kHttp1;
  bool grpc = false;
  bool has_path = false;  // text->path holds the request's path (FlightOptions::raw_path)
  bool path_truncated = false;
  PeerAddress peer;
  std::shared_ptr<const FlightText> text;  // null when there is neither a trace id nor a path

  std::string_view trace_view() const { return text ? text->trace_id : std::string_view(); }
  std::string_view path_view() const { return has_path ? text->path : std::string_view(); }
};

// No complete response, a status >= 500, or a non-zero gRPC status: what the stats count as an
// error.
bool flight_failure(const Exchange& e);
// To the last response byte, else to the response head; 0 without a response.
MonoNanos flight_duration(const Exchange& e);

// A relay worker's records of one route since its last hand-over.
class FlightCandidates {
 public:
  // The hot path: a comparison unless the exchange is kept.
  void offer(const Exchange& e, int64_t started_ms, const FlightOptions& o) {
    const bool is_failure = flight_failure(e);
    const MonoNanos d = flight_duration(e);
    // An exchange that ended after the window will be merged into the next one: no floor.
    const MonoNanos ended = e.response_done != 0 ? e.response_done : e.response_headers_done;
    const bool is_slow = d > 0 && (slow_.size() < o.per_route || d > threshold_) &&
                         (d > floor_ || ended >= floor_until_);
    if (is_failure || is_slow) keep(e, started_ms, o, d, is_failure, is_slow);
  }
  // What the aggregator's slowest list of the window ending at `until` (monotonic) already
  // beats: a slow candidate that ends before then must be slower than `floor` to be kept.
  // Without it, each of a worker's two buffers kept the first `per_route` exchanges of every
  // route it served at each hand-over, though a warm window would take none of them.
  void set_floor(MonoNanos floor, MonoNanos until) {
    floor_ = floor;
    floor_until_ = until;
  }
  void clear();    // keeps the capacity and the floor
  void release();  // clear() and gives the lists' memory back
  bool empty() const { return slow_.empty() && failures_.empty(); }
  const std::vector<FlightRecord>& slow() const { return slow_; }
  const std::vector<FlightRecord>& failures() const { return failures_; }
  // The aggregator adopts a list instead of copying it (merge_flight); this one is left empty
  // and without capacity.
  std::vector<FlightRecord> take_slow();
  std::vector<FlightRecord> take_failures();

 private:
  void keep(const Exchange& e, int64_t started_ms, const FlightOptions& o, MonoNanos duration,
            bool is_failure, bool is_slow);
  std::vector<FlightRecord> slow_;      // at most per_route, in no order
  std::vector<FlightRecord> failures_;  // at most per_route, in no order
  MonoNanos threshold_ = 0;             // the smallest duration in slow_ once it is full
  MonoNanos floor_ = 0, floor_until_ = 0;  // set_floor()
};

// What the aggregator keeps of one route, and what snapshots share: immutable.
struct FlightView {
  uint64_t window = 0;                 // the report window `slow` belongs to
  std::vector<FlightRecord> slow;      // that window's slowest, slowest first
  std::vector<FlightRecord> previous;  // the window before, slowest first
  std::vector<FlightRecord> failures;  // the most recent failures, newest first
  bool empty() const { return slow.empty() && previous.empty() && failures.empty(); }
};
using FlightViewPtr = std::shared_ptr<const FlightView>;

// `view` as of report window `window` (numbered: monotonic time / window length): in a new
// window the slowest list starts over and the last one's becomes `previous`. Returns `view`
// itself when nothing changes.
FlightViewPtr roll_flight(const FlightViewPtr& view, uint64_t window);
// `view` (already rolled to `window`, or null) with a worker's candidates merged in: the
// slowest `per_route` of both, and the newest `per_route` failures. A new view only if
// something changed. Where the view's list is empty (a route's first records, a new window)
// it adopts the delta's list instead of copying it, leaving that one empty: a route served
// once costs one record, not one in the worker and a copy in the aggregator.
FlightViewPtr merge_flight(const FlightViewPtr& view, FlightCandidates& delta, size_t per_route,
                           uint64_t window);
// The duration a new record must beat to enter `view`'s slowest list: its slowest
// `per_route`-th once the list is full, else 0.
MonoNanos flight_floor(const FlightViewPtr& view, size_t per_route);

}  // namespace netprof
