#include "export/pusher.h"

#include <algorithm>
#include <random>

#include "base/clock.h"

namespace netprof {
Pusher::Pusher(PushOptions options, std::function<std::string()> build_payload)
    : options_(std::move(options)), build_(std::move(build_payload)) {
  stats_.name = options_.name;
  stats_.url = "http://" + options_.url.host_header() + options_.url.path;
}

Pusher::~Pusher() { stop(); }

void Pusher::start() { thread_ = std::thread([this] { run(); }); }

void Pusher::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

PushStats Pusher::stats() const {
  std::lock_guard lock(mu_);
  PushStats s = stats_;
  s.queued = queue_.size();
  return s;
}

bool Pusher::deliver(const std::string& payload) {
  const HttpResult r = http_request(options_.url, "POST", payload, options_.content_type,
                                    options_.timeout_ms);
  std::lock_guard lock(mu_);
  if (r.ok()) {
    ++stats_.sent;
    stats_.last_success_ms = unix_ms();
    stats_.last_error.clear();
    return true;
  }
  ++stats_.failed_attempts;
  stats_.last_error = r.status ? "HTTP " + std::to_string(r.status) : r.error;
  // A 4xx other than timeout/too-many-requests will not get better by retrying the same bytes.
  if (r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429) {
    ++stats_.dropped;
    return true;
  }
  return false;
}

void Pusher::run() {
  using Clock = std::chrono::steady_clock;
  std::mt19937 rng(std::random_device{}());
  auto next_tick = Clock::now() + options_.interval;
  auto retry_at = Clock::time_point::min();
  auto backoff = options_.initial_backoff;

  auto enqueue = [this](std::string payload) {
    std::lock_guard lock(mu_);
    if (queue_.size() >= options_.max_queue) {
      queue_.pop_front();
      ++stats_.dropped;
    }
    queue_.push_back(std::move(payload));
  };

  std::unique_lock lock(mu_);
  while (!stopping_) {
    const auto now = Clock::now();
    if (now >= next_tick) {
      lock.unlock();
      enqueue(build_());
      lock.lock();
      next_tick = now + options_.interval;
    }
    if (!queue_.empty() && now >= retry_at) {
      const std::string payload = queue_.front();
      lock.unlock();
      const bool done = deliver(payload);
      lock.lock();
      if (done) {
        if (!queue_.empty()) queue_.pop_front();
        backoff = options_.initial_backoff;
        retry_at = Clock::time_point::min();
        continue;  // drain the backlog without waiting for the next tick
      }
      // Jitter keeps many netprof instances from retrying in step.
      std::uniform_int_distribution<int64_t> jitter(backoff.count() / 2, backoff.count());
      retry_at = Clock::now() + std::chrono::milliseconds(jitter(rng));
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    const auto wake_at = queue_.empty() ? next_tick : std::min(next_tick, std::max(retry_at, now));
    wake_.wait_until(lock, wake_at, [this] { return stopping_; });
  }
  lock.unlock();
  // The last word: what happened since the previous tick, then one try for the backlog.
  enqueue(build_());
  while (true) {
    std::string payload;
    {
      std::lock_guard guard(mu_);
      if (queue_.empty()) break;
      payload = std::move(queue_.front());
      queue_.pop_front();
    }
    if (!deliver(payload)) {
      std::lock_guard guard(mu_);
      stats_.dropped += 1 + queue_.size();
      queue_.clear();
      break;
    }
  }
}

}  // namespace netprof
