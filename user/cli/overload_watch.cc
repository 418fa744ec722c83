#include "cli/overload_watch.h"

#include <time.h>

#include <algorithm>
#include <string>

#include "base/clock.h"
#include "export/prometheus_text.h"

namespace netprof {
namespace {

// How far back /stats' "lag_max_recent_s" looks.
constexpr MonoNanos kRecent = 1'000'000'000;

nlohmann::json histogram_json(const LoopMeter::Histogram& h) {
  return {{"count", h.count},
          {"sum_s", h.sum_s},
          {"p50_le_s", h.quantile_bound(0.5)},
          {"p99_le_s", h.quantile_bound(0.99)}};
}

void write_histogram(PrometheusWriter& w, std::string_view name, std::span<const Label> labels,
                     const LoopMeter::Histogram& h) {
  w.histogram(name, labels, LoopMeter::kBuckets, h.counts, h.sum_s);
}

}  // namespace

OverloadWatch::OverloadWatch(RelayGroup& relays, OverloadGuardOptions options, std::string mode,
                             std::function<void(const std::string&)> log)
    : relays_(relays),
      mode_(std::move(mode)),
      log_(std::move(log)),
      wall_minus_mono_ms_(unix_ms() - mono_nanos() / 1'000'000),
      guard_(options, relays.size()),
      recent_lag_(relays.size()) {}

void OverloadWatch::tick(MonoNanos now, const InterceptionSwitch& intercept) {
  // Windows are taken in every mode: /stats shows the recent lag, and they must not pile up.
  std::vector<OverloadGuard::WorkerSample> samples(relays_.size());
  for (size_t i = 0; i < relays_.size(); ++i) {
    LoopMeter::Window window = relays_.meter(i).take_window(now);
    samples[i].lag_max = window.lag_max_ns;
    if (!intercept) continue;
    for (const auto& [scope, ns] : window.busy_ns)
      if (const std::optional<uint32_t> pod = intercept.pod_of(scope))
        samples[i].busy_by_pod[*pod] += ns;
  }
  std::vector<std::pair<uint32_t, std::string>> pods;
  if (intercept) pods = intercept.pods();
  std::vector<OverloadGuard::Decision> decisions;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < samples.size(); ++i) {
      auto& recent = recent_lag_[i];
      recent.emplace_back(now, samples[i].lag_max);
      while (!recent.empty() && now - recent.front().first > kRecent) recent.pop_front();
    }
    if (pods != pods_) ++version_;
    pods_ = pods;
    if (intercept) decisions = guard_.step(now, samples);
    for (const auto& [key, label] : pods_)
      if (guard_.pods().count(key) != 0) labels_[key] = label;
  }
  for (const OverloadGuard::Decision& d : decisions) {
    std::string label;
    {
      std::lock_guard lock(mu_);
      label = labels_.count(d.pod) ? labels_[d.pod] : "scope " + std::to_string(d.pod);
    }
    const std::string error = intercept.set(d.pod, !d.detach);
    if (!error.empty()) {
      std::lock_guard lock(mu_);
      guard_.failed(d, now, error);
      ++version_;
      if (d.detach)
        log_("overload: could not detach pod " + label + ": " + error);
      else
        log_("overload: pod " + label + " not re-attached: " + error);
      continue;
    }
    if (d.detach)
      log_("overload: detached pod " + label +
           " (new connections go straight to the app; "
           "relayed ones carry on): " +
           d.reason);
    else
      log_("overload: re-attached pod " + label + ": " + d.reason);
    std::lock_guard lock(mu_);
    ++version_;
  }
}

nlohmann::json OverloadWatch::status() const {
  const MonoNanos now = mono_nanos();
  nlohmann::json workers = nlohmann::json::array();
  LoopMeter::Histogram added;
  for (size_t i = 0; i < relays_.size(); ++i) {
    const LoopMeter& meter = relays_.meter(i);
    added.merge(meter.added());
    MonoNanos recent = 0;
    {
      std::lock_guard lock(mu_);
      for (const auto& [at, lag] : recent_lag_[i])
        if (now - at <= kRecent) recent = std::max(recent, lag);
    }
    workers.push_back({{"worker", i},
                       {"turns", meter.turns()},
                       {"lag_max_recent_s", static_cast<double>(recent) / 1e9},
                       {"lag_s", histogram_json(meter.lag())}});
  }
  std::lock_guard lock(mu_);
  const OverloadGuardOptions& o = guard_.options();
  nlohmann::json overload = {{"enabled", guard_.enabled() && mode_ != "proxy"},
                             {"lag_threshold_s", static_cast<double>(o.lag_threshold) / 1e9},
                             {"for_s", static_cast<double>(o.sustain) / 1e9},
                             {"cooldown_s", static_cast<double>(o.cooldown) / 1e9},
                             {"detaches", guard_.detaches()}};
  if (mode_ == "proxy") overload["note"] = "proxy mode: nothing to detach (only measured)";
  nlohmann::json pods = nlohmann::json::array();
  auto to_wall = [this](MonoNanos t) { return t / 1'000'000 + wall_minus_mono_ms_; };
  for (const auto& [key, label] : pods_) {
    nlohmann::json pod = {{"pod", label}, {"key", key}, {"state", "attached"}};
    if (auto it = guard_.pods().find(key); it != guard_.pods().end()) {
      const OverloadGuard::PodState& s = it->second;
      pod["state"] = s.detached ? "detached" : "attached";
      pod["reason"] = s.reason;
      pod["since_ms"] = to_wall(s.since);
      pod["detaches"] = s.detaches;
      if (s.detached) pod["until_ms"] = to_wall(s.until);
    }
    pods.push_back(std::move(pod));
  }
  overload["pods"] = std::move(pods);
  return {{"workers", std::move(workers)},
          {"added_s", histogram_json(added)},
          {"overload", std::move(overload)}};
}

void OverloadWatch::write_metrics(PrometheusWriter& w) const {
  w.family("netprof_relay_loop_lag_seconds", "histogram",
           "Relay loop turns by length, per worker: from epoll_wait returning to the loop "
           "waiting again. A connection that became ready during a turn waited up to that "
           "long.");
  std::vector<std::string> names;
  for (size_t i = 0; i < relays_.size(); ++i) names.push_back(std::to_string(i));
  for (size_t i = 0; i < relays_.size(); ++i) {
    const Label labels[] = {{"worker", names[i]}};
    write_histogram(w, "netprof_relay_loop_lag_seconds", labels, relays_.meter(i).lag());
  }
  LoopMeter::Histogram added;
  for (size_t i = 0; i < relays_.size(); ++i) added.merge(relays_.meter(i).added());
  w.family("netprof_relay_added_seconds", "histogram",
           "Time the relay's loop added to an exchange: for each read of its connection, from "
           "the loop waking with it ready to the read done, summed over the exchange's reads.");
  write_histogram(w, "netprof_relay_added_seconds", {}, added);
  std::lock_guard lock(mu_);
  w.single("netprof_overload_detaches_total", "counter",
           "Pods whose interception the overload guard detached because their traffic kept a "
           "relay worker's loop lagging (see --overload-lag).",
           static_cast<double>(guard_.detaches()));
}

std::vector<std::pair<std::string, bool>> OverloadWatch::pod_states() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& [key, label] : pods_) {
    auto it = guard_.pods().find(key);
    out.emplace_back(label, it == guard_.pods().end() || !it->second.detached);
  }
  return out;
}

bool OverloadWatch::any_active() const {
  const auto states = pod_states();
  if (states.empty()) return true;
  return std::any_of(states.begin(), states.end(), [](const auto& s) { return s.second; });
}

uint64_t OverloadWatch::version() const {
  uint64_t turns = 0;
  for (size_t i = 0; i < relays_.size(); ++i) turns += relays_.meter(i).turns();
  std::lock_guard lock(mu_);
  return version_ + guard_.version() + turns;
}

HttpResponse OverloadWatch::debug_stall(const HttpRequest& req) {
  if (req.method != "POST") {
    HttpResponse r =
        HttpResponse::text(405, "POST /debug/stall?ms=N&seconds=S[&worker=W][&scope=X]\n");
    r.headers.emplace_back("Allow", "POST");
    return r;
  }
  try {
    const double ms = std::stod(std::string(req.param("ms", "0")));
    const double seconds = std::stod(std::string(req.param("seconds", "0")));
    const int64_t worker = std::stoll(std::string(req.param("worker", "-1")));
    const int64_t scope = std::stoll(std::string(req.param("scope", "-1")));
    if (!(ms >= 0 && ms <= 10'000 && seconds >= 0 && seconds <= 3600))
      return HttpResponse::text(400, "ms in [0, 10000], seconds in [0, 3600]\n");
    relays_.stall_for_tests(static_cast<MonoNanos>(ms * 1e6), static_cast<MonoNanos>(seconds * 1e9),
                            worker, scope);
    log_("test hook: stalling relay worker " +
         (worker < 0 ? std::string("(all)") : std::to_string(worker)) + " " + std::to_string(ms) +
         " ms per turn" + (scope < 0 ? std::string() : " of scope " + std::to_string(scope)) +
         " for " + std::to_string(seconds) + " s");
    return HttpResponse::text(200, "stalling\n");
  } catch (const std::exception&) {
    return HttpResponse::text(400, "ms, seconds, worker and scope must be numbers\n");
  }
}

}  // namespace netprof
