#include "tracker_harness.h"

#include <gtest/gtest.h>

#include <span>

namespace netprof::testing {

std::ostream& operator<<(std::ostream& os, const SeenExchange& e) {
  return os << "{scope=" << e.scope << " method=" << int{e.method} << " HTTP/"
            << int{e.http_major} << "." << int{e.http_minor} << " path='" << e.path << "'"
            << (e.path_truncated ? "(truncated)" : "") << " status=" << e.status << " reason='"
            << e.reason << "' t=[" << e.request_first_byte << "," << e.request_headers_done << ","
            << e.request_done << "," << e.response_headers_done << "," << e.response_done
            << "] ended=" << e.ended << " bytes=[" << e.request_bytes << ","
            << e.request_body_bytes << "," << e.response_bytes << "," << e.response_body_bytes
            << "] outcome=" << static_cast<int>(e.outcome) << "}";
}

std::ostream& operator<<(std::ostream& os, const RunResult& r) {
  os << "{unparsed=" << r.unparsed << " mode=" << static_cast<int>(r.mode)
     << " pending=" << r.pending << " exchanges:";
  for (const SeenExchange& e : r.exchanges) os << "\n  " << e;
  return os << "}";
}

void RecordingSink::on_exchange(const Exchange& e) {
  SeenExchange s;
  s.scope = e.scope;
  s.method = e.method;
  s.http_major = e.http_major;
  s.http_minor = e.http_minor;
  s.path_truncated = e.path_truncated;
  s.path = std::string(e.path);
  s.status = e.status;
  s.reason = std::string(e.reason);
  s.request_first_byte = e.request_first_byte;
  s.request_headers_done = e.request_headers_done;
  s.request_done = e.request_done;
  s.response_headers_done = e.response_headers_done;
  s.response_done = e.response_done;
  s.ended = e.ended;
  s.request_bytes = e.request_bytes;
  s.request_body_bytes = e.request_body_bytes;
  s.response_bytes = e.response_bytes;
  s.response_body_bytes = e.response_body_bytes;
  s.outcome = e.outcome;
  exchanges.push_back(std::move(s));
}

void RecordingSink::on_unparsed_connection(uint32_t scope) {
  ++unparsed;
  unparsed_scope = scope;
}

RunResult run(const Script& script, const TrackerLimits& limits, const Chunker& chunker,
              uint32_t scope) {
  RecordingSink sink;
  HttpTracker tracker(sink, scope, limits);
  for (size_t i = 0; i < script.size(); ++i) {
    const Step& step = script[i];
    switch (step.kind) {
      case Step::Kind::kClient:
      case Step::Kind::kServer: {
        std::vector<size_t> pieces;
        if (chunker) pieces = chunker(i, step.bytes.size());
        if (pieces.empty()) pieces.push_back(step.bytes.size());
        size_t offset = 0;
        for (size_t piece : pieces) {
          std::span<const char> bytes(step.bytes.data() + offset, piece);
          offset += piece;
          if (step.kind == Step::Kind::kClient) {
            tracker.on_client_bytes(bytes, step.at);
          } else {
            tracker.on_server_bytes(bytes, step.at);
          }
        }
        break;
      }
      case Step::Kind::kServerEof: tracker.on_server_eof(step.at); break;
      case Step::Kind::kClientEof: tracker.on_client_eof(step.at); break;
      case Step::Kind::kClose: tracker.on_connection_closed(step.at, false); break;
      case Step::Kind::kReset: tracker.on_connection_closed(step.at, true); break;
    }
  }
  for (const SeenExchange& e : sink.exchanges) EXPECT_EQ(e.scope, scope);
  if (sink.unparsed > 0) {
    EXPECT_EQ(sink.unparsed_scope, scope);
  }
  return RunResult{sink.exchanges, sink.unparsed, tracker.mode(), tracker.pending_requests()};
}

RunResult run_all_splits(const Script& script, const TrackerLimits& limits) {
  const RunResult whole = run(script, limits);
  for (size_t step = 0; step < script.size(); ++step) {
    const size_t len = script[step].bytes.size();
    for (size_t cut = 1; cut < len; ++cut) {
      const RunResult split = run(script, limits, [&](size_t index, size_t n) {
        return index == step ? std::vector<size_t>{cut, n - cut} : std::vector<size_t>{};
      });
      if (split != whole) {
        ADD_FAILURE() << "step " << step << " split at byte " << cut << " gives\n"
                      << split << "\ninstead of\n" << whole;
        return whole;
      }
    }
  }
  const RunResult bytewise = run(script, limits, [](size_t, size_t n) {
    return std::vector<size_t>(n, 1);
  });
  EXPECT_EQ(bytewise, whole) << "byte by byte";
  return whole;
}

}  // namespace netprof::testing
