// The FIFO of requests a connection has sent and not yet seen answered. Responses come back in
// request order (HTTP/1.1 pipelining), so the front is always the request the next response
// belongs to. Slots, and the capacity of their path buffers, are reused: a keep-alive connection
// in steady state allocates nothing per request.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "http/exchange.h"
#include "http/trace_id.h"

namespace netprof::http_detail {

struct PendingRequest {
  Exchange ex;                 // request fields; response fields as they arrive
  std::string path;            // request-target, at most TrackerLimits::max_path_bytes
  bool headers_done = false;   // request headers complete: it is a request worth reporting
  bool upgrade = false;        // Upgrade or CONNECT: the client waits for the answer
  bool final_headers = false;  // final (non-1xx) response headers seen
  TraceIdSlot trace;           // a trace id from the request head (TrackerLimits::trace_ids)

  void reset(uint32_t scope) {
    ex = Exchange{};
    ex.scope = scope;
    path.clear();  // keeps capacity
    headers_done = upgrade = final_headers = false;
    trace.clear();
  }
};

class PendingQueue {
 public:
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  PendingRequest& front() { return slots_[head_]; }
  PendingRequest& back() { return slots_[index(count_ - 1)]; }

  PendingRequest& push(uint32_t scope) {
    if (count_ == slots_.size()) {
      // Full ring: straighten it so the new slot can go at the end. Only happens when the
      // connection reaches a new peak of pending requests.
      std::rotate(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(head_),
                  slots_.end());
      head_ = 0;
      slots_.emplace_back();
    }
    ++count_;
    PendingRequest& slot = back();
    slot.reset(scope);
    return slot;
  }

  void pop_front() {
    head_ = index(1);
    --count_;
  }

 private:
  size_t index(size_t offset) const { return (head_ + offset) % slots_.size(); }

  std::vector<PendingRequest> slots_;
  size_t head_ = 0;
  size_t count_ = 0;
};

}  // namespace netprof::http_detail
