// Connection-level counters, written by the relay loop and read by reporters on other
// threads; relaxed atomics are enough because each counter is independent. Each relay worker
// has its own (the byte counters move on every read): aligned so that two workers' counters
// never share a cache line; readers add them up (StatsHub).
#pragma once

#include <atomic>
#include <cstdint>

namespace netprof {

struct alignas(64) ConnectionCounters {
  std::atomic<uint64_t> accepted{0};         // client connections accepted
  std::atomic<uint64_t> active{0};           // relayed connections open now
  std::atomic<uint64_t> unparsed{0};         // connections parsed neither as HTTP/1.x nor HTTP/2
  // Of those, connections that stopped being parsed on a message whose length could be read
  // two ways (conflicting Content-Lengths, Content-Length with Transfer-Encoding...).
  std::atomic<uint64_t> ambiguous_framing{0};
  std::atomic<uint64_t> upstream_failed{0};  // upstream connect refused / timed out / unreachable
  std::atomic<uint64_t> rejected{0};         // accepted but closed at once (fd or connection limit)
  std::atomic<uint64_t> untracked_streams{0};  // HTTP/2 streams relayed but not tracked
  std::atomic<uint64_t> bytes_client_to_server{0};
  std::atomic<uint64_t> bytes_server_to_client{0};
};

}  // namespace netprof
