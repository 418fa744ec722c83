#include "relay/loop_meter.h"

#include <algorithm>

namespace netprof {

void LoopMeter::Histogram::merge(const Histogram& other) {
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  count += other.count;
  sum_s += other.sum_s;
}

double LoopMeter::Histogram::quantile_bound(double q) const {
  if (count == 0) return 0;
  const double rank = q * static_cast<double>(count);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    seen += counts[i];
    if (static_cast<double>(seen) >= rank) return kBuckets[i];
  }
  return kBuckets.back();
}

void LoopMeter::bump(AtomicHistogram& h, MonoNanos ns) {
  ns = std::max<MonoNanos>(0, ns);
  const double seconds = static_cast<double>(ns) / 1e9;
  size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  // Single writer: a load and a store, no read-modify-write.
  auto add = [](std::atomic<uint64_t>& v, uint64_t by) {
    v.store(v.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  };
  add(h.counts[i], 1);
  add(h.sum_ns, static_cast<uint64_t>(ns));
  add(h.count, 1);
}

LoopMeter::Histogram LoopMeter::read(const AtomicHistogram& h) {
  Histogram out;
  for (size_t i = 0; i < out.counts.size(); ++i)
    out.counts[i] = h.counts[i].load(std::memory_order_relaxed);
  out.count = h.count.load(std::memory_order_relaxed);
  out.sum_s = static_cast<double>(h.sum_ns.load(std::memory_order_relaxed)) / 1e9;
  return out;
}

void LoopMeter::turn_ended(MonoNanos woke, MonoNanos now) {
  const MonoNanos turn = now - woke;
  bump(lag_, turn);
  local_.lag_max_ns = std::max(local_.lag_max_ns, turn);
  turn_started_ns_.store(0, std::memory_order_relaxed);
  if (now - last_publish_ < kPublishEvery) return;
  last_publish_ = now;
  publish();
}

void LoopMeter::publish() {
  std::lock_guard lock(mu_);
  shared_.lag_max_ns = std::max(shared_.lag_max_ns, local_.lag_max_ns);
  for (const auto& [scope, ns] : local_.busy_ns) shared_.busy_ns[scope] += ns;
  local_.lag_max_ns = 0;
  local_.busy_ns.clear();
}

LoopMeter::Window LoopMeter::take_window(MonoNanos now) {
  Window out;
  {
    std::lock_guard lock(mu_);
    out = std::move(shared_);
    shared_ = Window{};
  }
  const MonoNanos running = turn_started_ns_.load(std::memory_order_relaxed);
  if (running != 0) out.lag_max_ns = std::max(out.lag_max_ns, now - running);
  return out;
}

}  // namespace netprof
