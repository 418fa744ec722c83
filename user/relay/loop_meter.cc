#include "relay/loop_meter.h"

#include <algorithm>

namespace netprof {

void LoopMeter::record_added(MonoNanos ns) {
  const double seconds = static_cast<double>(std::max<MonoNanos>(0, ns)) / 1e9;
  size_t i = 0;
  while (i < kAddedBuckets.size() && seconds > kAddedBuckets[i]) ++i;
  // Single writer: a load and a store, no read-modify-write.
  auto bump = [](std::atomic<uint64_t>& v, uint64_t by) {
    v.store(v.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  };
  bump(added_buckets_[i], 1);
  bump(added_count_, 1);
  bump(added_sum_ns_, static_cast<uint64_t>(std::max<MonoNanos>(0, ns)));
}

void LoopMeter::on_iteration(MonoNanos woke, MonoNanos now) {
  local_.lag_max_ns = std::max(local_.lag_max_ns, now - woke);
  if (now - last_publish_ < kPublishEvery) return;
  last_publish_ = now;
  publish();
}

void LoopMeter::publish() {
  last_lag_ns_.store(local_.lag_max_ns, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  shared_.lag_max_ns = std::max(shared_.lag_max_ns, local_.lag_max_ns);
  for (const auto& [scope, ns] : local_.busy_ns) shared_.busy_ns[scope] += ns;
  local_.lag_max_ns = 0;
  local_.busy_ns.clear();
}

LoopMeter::Window LoopMeter::take_window() {
  std::lock_guard lock(mu_);
  Window out = std::move(shared_);
  shared_ = Window{};
  return out;
}

LoopMeter::AddedTime LoopMeter::added_time() const {
  AddedTime out;
  for (size_t i = 0; i < added_buckets_.size(); ++i)
    out.buckets[i] = added_buckets_[i].load(std::memory_order_relaxed);
  out.count = added_count_.load(std::memory_order_relaxed);
  out.sum_s = static_cast<double>(added_sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return out;
}

}  // namespace netprof
