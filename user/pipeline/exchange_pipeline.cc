#include "pipeline/exchange_pipeline.h"

#include <algorithm>
#include <utility>

#include "routes/route_namer.h"
#include "stats/asset_classifier.h"

namespace netprof {
namespace {

// The worker's buffers bin no histograms themselves: the hub does (see StoreLimits).
StoreLimits deferred(StoreLimits limits) {
  limits.defer_histograms = true;
  return limits;
}

}  // namespace

ExchangePipeline::ExchangePipeline(const PipelineOptions& options,
                                   std::shared_ptr<RouteNamer> namer,
                                   std::shared_ptr<const AssetClassifier> assets, RoutedSink* tap,
                                   ConnectionCounters& connections)
    : options_(options),
      namer_(namer ? std::move(namer) : std::make_shared<RouteNamer>()),
      concurrent_naming_(namer_->options().concurrent),
      tap_(tap),
      connections_(connections),
      handoff_(deferred(options.limits), namer_,
               assets ? assets : std::make_shared<const AssetClassifier>(), options.metrics) {}

ExchangePipeline::~ExchangePipeline() = default;

void ExchangePipeline::on_exchange(const Exchange& exchange) {
  // The one place a route is named. Workers sharing the namer each bring their own scratch.
  route_of(exchange, *namer_, route_scratch_, concurrent_naming_ ? &naming_scratch_ : nullptr);
  WorkerDelta& delta = handoff_.active();
  delta.store.record(exchange, route_scratch_);
  if (options_.record_metrics) delta.metrics.on_routed_exchange(exchange, route_scratch_);
  if (tap_ != nullptr) tap_->on_routed_exchange(exchange, route_scratch_);
}

void ExchangePipeline::on_unparsed_connection(uint32_t /*scope*/) {
  connections_.unparsed.fetch_add(1, std::memory_order_relaxed);
}

void ExchangePipeline::on_untracked_stream(uint32_t /*scope*/) {
  connections_.untracked_streams.fetch_add(1, std::memory_order_relaxed);
}

void ExchangePipeline::on_tls_connection(const TlsConnection& connection) {
  handoff_.active().tls.record(connection);
  if (tap_ != nullptr) tap_->on_tls_connection(connection);
}

void ExchangePipeline::erase_scope(uint32_t scope) {
  {
    std::lock_guard lock(erase_mu_);
    erase_queue_.push_back(scope);
  }
  erase_pending_.store(true, std::memory_order_release);
}

void ExchangePipeline::apply_erasures() {
  if (erase_pending_.exchange(false, std::memory_order_acq_rel)) {
    std::vector<uint32_t> scopes;
    {
      std::lock_guard lock(erase_mu_);
      scopes.swap(erase_queue_);
    }
    for (uint32_t scope : scopes) {
      handoff_.active().store.erase_scope(scope);
      handoff_.active().metrics.erase_scope(scope);
      handoff_.active().tls.erase_scope(scope);
      erase_spare_.push_back(scope);
    }
  }
  // The other buffer is ours only while the hub does not hold it.
  if (!erase_spare_.empty() && !handoff_.pending() && handoff_.publish()) {
    // Publishing swapped the buffers: the one to clean is active now; the handed-over one was
    // cleaned above. Its (empty) counts go to the hub, which is harmless.
    for (uint32_t scope : erase_spare_) {
      handoff_.active().store.erase_scope(scope);
      handoff_.active().metrics.erase_scope(scope);
      handoff_.active().tls.erase_scope(scope);
    }
    erase_spare_.clear();
  }
}

void ExchangePipeline::on_tick(MonoNanos now) {
  if (erase_pending_.load(std::memory_order_relaxed) || !erase_spare_.empty()) apply_erasures();
  const bool wanted = handoff_wanted_.load(std::memory_order_relaxed);
  if (!wanted && now < next_handoff_) return;
  if (handoff_.publish()) {
    handoff_wanted_.store(false, std::memory_order_relaxed);
    next_handoff_ = now + std::chrono::nanoseconds(options_.max_hold).count();
  }
}

}  // namespace netprof
