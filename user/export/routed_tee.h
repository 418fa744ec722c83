// What a sink that wants the route as well as the exchange implements (the HTTP series, the
// tap). The exchange pipeline (pipeline/exchange_pipeline.h) names the route once and hands
// it to each.
#pragma once

#include <string_view>

#include "http/exchange.h"

namespace netprof {

class RoutedSink {
 public:
  virtual ~RoutedSink() = default;
  // Called on the relay thread: must be short and must not block on slow consumers.
  virtual void on_routed_exchange(const Exchange& exchange, std::string_view route) = 0;
  // A TLS connection at its close (tls/connection.h); the same rules. Default: ignored.
  virtual void on_tls_connection(const TlsConnection& /*connection*/) {}
};

}  // namespace netprof
