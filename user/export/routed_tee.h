// Fans each exchange out from the relay thread: first to the stats store (which names the
// route), then to sinks that want the route too (Prometheus series, the tap). The route is
// taken from the namer's last result, so templating runs once per exchange.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.h"
#include "routes/route_namer.h"

namespace netprof {

class RoutedSink {
 public:
  virtual ~RoutedSink() = default;
  // Called on the relay thread: must be short and must not block on slow consumers.
  virtual void on_routed_exchange(const Exchange& exchange, std::string_view route) = 0;
};

class RoutedTee final : public ExchangeSink {
 public:
  // `store` names routes through `namer` (the same object). All references outlive the tee.
  RoutedTee(ExchangeSink& store, RouteNamer& namer, std::vector<RoutedSink*> sinks)
      : store_(store), namer_(namer), sinks_(std::move(sinks)) {}

  void on_exchange(const Exchange& exchange) override {
    store_.on_exchange(exchange);
    if (sinks_.empty()) return;
    std::string_view route = namer_.last_route_for(exchange.path);
    if (route.empty()) {  // the store did not name this one (never expected): name it here
      namer_.name(exchange.path, route_scratch_);
      route = route_scratch_;
    }
    for (RoutedSink* sink : sinks_) sink->on_routed_exchange(exchange, route);
  }
  void on_unparsed_connection(uint32_t scope) override { store_.on_unparsed_connection(scope); }

 private:
  ExchangeSink& store_;
  RouteNamer& namer_;
  std::vector<RoutedSink*> sinks_;
  std::string route_scratch_;
};

}  // namespace netprof
