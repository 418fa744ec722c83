#include "relay/overload_guard.h"

#include <algorithm>
#include <cstdio>

namespace netprof {

std::string duration_text(MonoNanos ns) {
  char text[32];
  if (ns < 1'000'000'000)
    std::snprintf(text, sizeof text, "%.0f ms", static_cast<double>(ns) / 1e6);
  else
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ns) / 1e9);
  return text;
}

OverloadGuard::OverloadGuard(OverloadGuardOptions options, size_t workers)
    : options_(options), workers_(std::max<size_t>(1, workers)) {}

MonoNanos OverloadGuard::hold() const { return std::min(kMaxHold, options_.sustain / 2); }

std::vector<OverloadGuard::Decision> OverloadGuard::step(MonoNanos now,
                                                         const std::vector<WorkerSample>& samples) {
  std::vector<Decision> out;
  if (!enabled()) return out;
  for (size_t w = 0; w < samples.size() && w < workers_.size(); ++w) {
    const WorkerSample& sample = samples[w];
    Worker& worker = workers_[w];
    if (sample.lag_max >= options_.lag_threshold) worker.last_over = now;
    const bool lagging = worker.last_over >= 0 && now - worker.last_over <= hold();
    if (!lagging) {
      worker.over_since = -1;
      worker.peak = 0;
      worker.busy.clear();
      continue;
    }
    if (worker.over_since < 0) worker.over_since = now;
    worker.peak = std::max(worker.peak, sample.lag_max);
    for (const auto& [pod, ns] : sample.busy_by_pod) worker.busy[pod] += ns;
    if (now - worker.over_since < options_.sustain) continue;

    // Lagging for the whole stretch: the busiest pod of this worker goes (if anyone's
    // traffic explains it). The next decision needs another full stretch.
    const MonoNanos stretch = now - worker.over_since;
    const MonoNanos peak = worker.peak;
    std::map<uint32_t, MonoNanos> busy;
    busy.swap(worker.busy);
    worker.over_since = now;
    worker.peak = 0;
    MonoNanos total = 0;
    auto busiest = busy.end();
    for (auto it = busy.begin(); it != busy.end(); ++it) {
      total += it->second;
      if (busiest == busy.end() || it->second > busiest->second) busiest = it;
    }
    if (busiest == busy.end() || busiest->second <= 0) continue;  // nobody's traffic
    PodState& pod = pods_[busiest->first];
    if (pod.detached) continue;  // its relayed connections still do it: nobody else is to blame
    const bool again = pod.reattached_at > 0 && now - pod.reattached_at < pod.cooldown;
    pod.cooldown =
        again ? std::min(pod.cooldown * 2, options_.cooldown * kMaxBackoff) : options_.cooldown;
    pod.detached = true;
    pod.since = now;
    pod.until = now + pod.cooldown;
    ++pod.detaches;
    ++detaches_;
    ++version_;
    const int share = static_cast<int>(100 * busiest->second / std::max<MonoNanos>(1, total));
    pod.reason = "relay worker " + std::to_string(w) + "'s loop lagged " +
                 duration_text(options_.lag_threshold) + " or more (up to " + duration_text(peak) +
                 ") for " + duration_text(stretch) + "; this pod's traffic took " +
                 std::to_string(share) + "% of its long turns; re-attached in " +
                 duration_text(pod.cooldown) +
                 (again ? " (detached again soon after the last "
                          "re-attachment: cool-down doubled)"
                        : "");
    out.push_back(Decision{true, busiest->first, pod.reason});
  }
  for (auto& [key, pod] : pods_) {
    if (!pod.detached || now < pod.until) continue;
    pod.detached = false;
    pod.since = now;
    pod.reattached_at = now;
    ++version_;
    pod.reason = "cool-down of " + duration_text(pod.cooldown) + " over";
    out.push_back(Decision{false, key, pod.reason});
  }
  return out;
}

void OverloadGuard::failed(const Decision& decision, MonoNanos now, const std::string& error) {
  auto it = pods_.find(decision.pod);
  if (it == pods_.end()) return;
  ++version_;
  if (!decision.detach) {
    pods_.erase(it);
    return;
  }
  PodState& pod = it->second;
  pod.detached = false;
  pod.since = now;
  pod.reason = "could not detach: " + error;
}

void OverloadGuard::forget(uint32_t pod) {
  if (pods_.erase(pod) != 0) ++version_;
}

}  // namespace netprof
