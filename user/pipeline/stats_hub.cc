#include "pipeline/stats_hub.h"

#include <malloc.h>

#include <cstdio>
#include <random>
#include <algorithm>
#include <utility>

#include "base/clock.h"

namespace netprof {
namespace {

bool same_connections(const RouteTableSnapshot& a, const RouteTableSnapshot& b) {
  return a.accepted == b.accepted && a.active == b.active && a.unparsed == b.unparsed &&
         a.ambiguous_framing == b.ambiguous_framing &&
         a.upstream_failed == b.upstream_failed && a.rejected == b.rejected &&
         a.untracked_streams == b.untracked_streams &&
         a.bytes_client_to_server == b.bytes_client_to_server &&
         a.bytes_server_to_client == b.bytes_server_to_client;
}

// A big rendered document freed by the last reader leaves its pages in malloc's arenas; hand
// them back so that RSS follows what is in use, not the peak of a burst of readers.
constexpr size_t kTrimAfterBytes = 4 << 20;
constexpr size_t kTrimAfterRoutes = 1000;

}  // namespace

StatsHub::StatsHub(StatsHubOptions options, const StoreLimits& limits,
                   const HttpMetricsOptions& metrics_options, std::shared_ptr<RouteNamer> namer,
                   std::shared_ptr<const AssetClassifier> assets)
    : options_(options),
      metrics_options_(metrics_options),
      namer_(std::move(namer)),
      cumulative_(limits, namer_, std::move(assets)),
      cumulative_metrics_(metrics_options),
      snapshot_(std::make_shared<const StatsSnapshot>()),
      etag_nonce_((uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()) {}

StatsHub::~StatsHub() { stop(); }

void StatsHub::add_worker(ExchangePipeline* pipeline) { workers_.push_back(pipeline); }

ConnectionCounters& StatsHub::connections(size_t worker) {
  while (connections_.size() <= worker) connections_.emplace_back();
  return connections_[worker];
}

void StatsHub::load_connections(RouteTableSnapshot& table) const {
  table.set_connections(ConnectionCounters{});
  for (const ConnectionCounters& c : connections_) table.add_connections(c);
}

void StatsHub::start() {
  if (thread_.joinable() || options_.interval.count() <= 0) return;
  thread_ = std::thread([this] { run(); });
}

void StatsHub::stop() {
  {
    std::lock_guard lock(run_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StatsHub::run() {
  std::unique_lock lock(run_mu_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    collect_now();
    lock.lock();
  }
}

bool StatsHub::collect_locked(bool workers_stopped) {
  bool changed = false;
  auto merge = [this, &changed](WorkerDelta& delta) {
    // An idle buffer is cleared too: that is when it gives back the routes it no longer serves.
    if (delta.store.has_counts() || delta.store.overflowed_requests() != 0) {
      cumulative_.merge_from(delta.store);
      changed = true;
    }
    if (delta.store.size() != 0) delta.store.clear_counts();
    if (delta.metrics.has_counts()) {
      cumulative_metrics_.merge_from(delta.metrics);
      changed = true;
    }
    if (delta.metrics.series_count() != 0) delta.metrics.clear_counts();
    if (delta.tls.has_counts()) {
      cumulative_tls_.merge_from(delta.tls);
      delta.tls.clear_counts();
      changed = true;
    }
  };
  if (workers_stopped) {
    // This thread owns the workers now: take what is handed over, then the rest.
    for (ExchangePipeline* w : workers_) {
      w->handoff().collect(merge);
      w->handoff().publish();
      w->handoff().collect(merge);
    }
    return changed;
  }
  // A buffer handed over earlier (unasked, or after the last wait gave up) holds older counts:
  // take it first, then ask for everything up to now.
  for (ExchangePipeline* w : workers_) {
    w->handoff().collect(merge);
    w->request_handoff();
  }
  // Workers hand over at their next loop tick; wait a little for them, polling (the relay
  // must not be made to signal anyone: it only flips an atomic).
  const auto deadline = std::chrono::steady_clock::now() + options_.handoff_wait;
  std::vector<bool> done(workers_.size(), false);
  size_t remaining = workers_.size();
  while (remaining != 0) {
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (!done[i] && workers_[i]->handoff().collect(merge)) {
        done[i] = true;
        --remaining;
      }
    }
    if (remaining == 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return changed;
}

void StatsHub::publish_locked() {
  auto snap = std::make_shared<StatsSnapshot>();
  snap->taken_at_ms = unix_ms();
  snap->routes = cumulative_.snapshot();
  load_connections(snap->routes);
  snap->routes.tls = cumulative_tls_.snapshot();
  snap->metrics = cumulative_metrics_.snapshot();
  if (namer_) snap->namer = namer_->counters();
  last_connections_ = RouteTableSnapshot{};
  load_connections(last_connections_);
  std::lock_guard lock(snapshot_mu_);
  snap->generation = snapshot_->generation + 1;
  snapshot_ = std::move(snap);
}

void StatsHub::collect_now(bool workers_stopped) {
  std::lock_guard lock(collect_mu_);
  // Once the workers have stopped, they never tick again: do not wait for them.
  if (workers_stopped) workers_stopped_ = true;
  workers_stopped = workers_stopped_;
  // A new flight window shows as news even if nothing else changed: its slowest list is new.
  const auto window_ms = std::max<int64_t>(1, options_.flight_window.count());
  // CLOCK_MONOTONIC, the exchanges' clock: the window's end is compared with their times.
  const int64_t since_boot_ms = mono_ms();
  const auto window = static_cast<uint64_t>(since_boot_ms / window_ms);
  const MonoNanos window_ends = (static_cast<int64_t>(window) + 1) * window_ms * 1'000'000;
  cumulative_.set_flight_window(window, window_ends);
  bool changed = collect_locked(workers_stopped);
  if (window != flight_window_) {
    flight_window_ = window;
    changed = true;
  }
  RouteTableSnapshot now;
  load_connections(now);
  if (!same_connections(now, last_connections_)) changed = true;
  if (changed || generation() == 0) publish_locked();
  // Each publish copies the whole table and drops the previous copy once its last reader
  // lets go; with many routes that churn leaves free pages in the aggregator's arena that
  // glibc keeps unless asked. Give them back (aggregator thread only, never the relay).
  if (cumulative_.size() >= kTrimAfterRoutes) malloc_trim(0);
}

std::shared_ptr<const StatsSnapshot> StatsHub::snapshot() const {
  std::lock_guard lock(snapshot_mu_);
  return snapshot_;
}

uint64_t StatsHub::generation() const {
  std::lock_guard lock(snapshot_mu_);
  return snapshot_->generation;
}

void StatsHub::erase_scope(uint32_t scope) {
  for (ExchangePipeline* w : workers_) w->erase_scope(scope);
  std::lock_guard lock(collect_mu_);
  cumulative_.erase_scope(scope);
  cumulative_metrics_.erase_scope(scope);
  cumulative_tls_.erase_scope(scope);
  publish_locked();
}

StatsHub::Rendered StatsHub::rendered(const std::string& name, const Renderer& render,
                                      uint64_t inputs_version) {
  using Clock = std::chrono::steady_clock;
  std::unique_lock lock(render_mu_);
  Cached& c = cache_[name];
  while (true) {
    const auto now = Clock::now();
    if (c.bytes && (now - c.rendered_at < options_.interval ||
                    (c.generation == generation() && c.inputs_version == inputs_version))) {
      return {c.bytes, c.etag};  // fresh enough, or nothing new to show
    }
    if (!c.rendering) break;
    render_done_.wait(lock);  // another reader renders this output: share its result
  }
  c.rendering = true;
  lock.unlock();
  const std::shared_ptr<const StatsSnapshot> snap = snapshot();
  std::shared_ptr<const std::string> bytes;
  try {
    bytes = std::make_shared<const std::string>(render(*snap));
  } catch (...) {
    lock.lock();
    c.rendering = false;
    render_done_.notify_all();
    throw;
  }
  lock.lock();
  const size_t old_size = c.bytes ? c.bytes->size() : 0;
  c.bytes = bytes;
  c.generation = snap->generation;
  c.inputs_version = inputs_version;
  c.rendered_at = Clock::now();
  c.rendering = false;
  ++c.renders;
  char tag[48];
  std::snprintf(tag, sizeof tag, "\"%016llx-%llu\"", static_cast<unsigned long long>(etag_nonce_),
                static_cast<unsigned long long>(++etag_sequence_));
  c.etag = tag;
  Rendered out{bytes, c.etag};
  render_done_.notify_all();
  lock.unlock();
  if (old_size >= kTrimAfterBytes) malloc_trim(0);
  return out;
}

std::map<std::string, uint64_t> StatsHub::render_counts() const {
  std::lock_guard lock(render_mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& [name, c] : cache_) out[name] = c.renders;
  return out;
}

}  // namespace netprof
