// Realistic Exchange records for the stats tests.
#pragma once

#include <string_view>

#include "http/exchange.h"

namespace netprof::testing {

inline constexpr uint8_t kGet = 1, kPost = 3;  // llhttp_method_t values

// A completed exchange: request headers at t0, response headers `latency_us` later, the
// last response byte `total_us` after the request headers.
inline Exchange completed(std::string_view path, uint16_t status, double latency_us = 1500,
                          double total_us = 2000, MonoNanos t0 = 1'000'000'000) {
  Exchange e;
  e.method = kGet;
  e.path = path;
  e.status = status;
  e.reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Internal Server Error";
  e.request_first_byte = t0 - 1000;
  e.request_headers_done = t0;
  e.request_done = t0;
  e.response_headers_done = t0 + static_cast<MonoNanos>(latency_us * 1000);
  e.response_done = t0 + static_cast<MonoNanos>(total_us * 1000);
  e.request_bytes = 120;
  e.response_bytes = 700;
  e.response_body_bytes = 512;
  return e;
}

// An exchange that ended without a (complete) response.
inline Exchange failed(std::string_view path, ExchangeOutcome outcome, MonoNanos t0 = 1'000'000'000) {
  Exchange e;
  e.method = kGet;
  e.path = path;
  e.request_first_byte = t0;
  e.request_headers_done = t0;
  e.request_bytes = 80;
  e.outcome = outcome;
  return e;
}

}  // namespace netprof::testing
