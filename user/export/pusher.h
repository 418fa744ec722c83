// Pushes a payload to a collector every interval on its own thread: a bounded queue (the
// oldest payload is dropped when it is full, and counted), retries with exponential backoff
// and jitter, and a last push at stop. The relay never waits for it: payloads are built
// here, from snapshots taken under the stores' short locks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "export/http_client.h"

namespace netprof {

struct PushOptions {
  std::string name;            // "otlp" or "json": the label on the self metrics
  Url url;
  std::string content_type = "application/json";
  std::chrono::milliseconds interval{10'000};
  size_t max_queue = 8;        // payloads waiting; more drop the oldest
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  int timeout_ms = 5000;       // per attempt (connect + send + reply)
};

struct PushStats {
  std::string name, url;
  uint64_t sent = 0;           // payloads the collector accepted (2xx)
  uint64_t failed_attempts = 0;
  uint64_t dropped = 0;        // payloads given up: queue full or rejected with a 4xx
  uint64_t queued = 0;
  int64_t last_success_ms = 0; // epoch ms
  std::string last_error;
};

class Pusher {
 public:
  Pusher(PushOptions options, std::function<std::string()> build_payload);
  ~Pusher();  // stop()
  void start();
  // Builds a last payload, tries to deliver what is queued (one attempt each, bounded by the
  // timeout) and joins the thread.
  void stop();
  PushStats stats() const;

 private:
  void run();
  bool deliver(const std::string& payload);  // one attempt; false to retry later

  PushOptions options_;
  std::function<std::string()> build_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<std::string> queue_;  // guarded by mu_
  PushStats stats_;                // guarded by mu_
};

}  // namespace netprof
