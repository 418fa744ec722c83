// Test harness for HttpTracker: a sink that records what it is told, scripts of timed byte
// chunks, and a runner that replays a script with every chunk split in every possible way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "http/tracker.h"

namespace netprof::testing {

// An Exchange with its views copied, so it outlives the sink call.
struct SeenExchange {
  uint32_t scope = 0;
  uint8_t method = 0;
  uint8_t http_major = 0, http_minor = 0;
  bool path_truncated = false;
  std::string path;
  uint16_t status = 0;
  std::string reason;
  MonoNanos request_first_byte = 0, request_headers_done = 0, request_done = 0;
  MonoNanos response_headers_done = 0, response_done = 0;
  MonoNanos ended = 0;  // given up without a complete response
  uint64_t request_bytes = 0, request_body_bytes = 0;
  uint64_t response_bytes = 0, response_body_bytes = 0;
  ExchangeOutcome outcome = ExchangeOutcome::kCompleted;

  bool operator==(const SeenExchange&) const = default;
};
std::ostream& operator<<(std::ostream& os, const SeenExchange& e);

class RecordingSink final : public ExchangeSink {
 public:
  void on_exchange(const Exchange& e) override;
  void on_unparsed_connection(uint32_t scope) override;

  std::vector<SeenExchange> exchanges;
  int unparsed = 0;
  uint32_t unparsed_scope = 0;
};

// Everything a run of the tracker produced.
struct RunResult {
  std::vector<SeenExchange> exchanges;
  int unparsed = 0;
  TrackerMode mode = TrackerMode::kHttp;
  size_t pending = 0;
  bool operator==(const RunResult&) const = default;
};
std::ostream& operator<<(std::ostream& os, const RunResult& r);

struct Step {
  enum class Kind { kClient, kServer, kServerEof, kClientEof, kClose, kReset };
  Kind kind;
  MonoNanos at;
  std::string bytes;
};
using Script = std::vector<Step>;

inline Step client(MonoNanos at, std::string bytes) {
  return {Step::Kind::kClient, at, std::move(bytes)};
}
inline Step server(MonoNanos at, std::string bytes) {
  return {Step::Kind::kServer, at, std::move(bytes)};
}
inline Step server_eof(MonoNanos at) { return {Step::Kind::kServerEof, at, {}}; }
inline Step client_eof(MonoNanos at) { return {Step::Kind::kClientEof, at, {}}; }
inline Step closed(MonoNanos at) { return {Step::Kind::kClose, at, {}}; }
inline Step reset(MonoNanos at) { return {Step::Kind::kReset, at, {}}; }

// Piece sizes for the bytes of step `index` (they must add up to `len`).
using Chunker = std::function<std::vector<size_t>(size_t index, size_t len)>;

RunResult run(const Script& script, const TrackerLimits& limits = {},
              const Chunker& chunker = nullptr, uint32_t scope = 7);

// Runs the script whole, then with each step's bytes split at every position, then byte by
// byte, and adds a test failure for any run whose result differs. Returns the whole run.
RunResult run_all_splits(const Script& script, const TrackerLimits& limits = {});

}  // namespace netprof::testing
