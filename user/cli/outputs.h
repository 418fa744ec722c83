// What a profiling session shows to the outside besides the periodic report: the admin API
// (dashboard, /stats, /metrics, /tap), the Prometheus series behind /metrics, and pushes to
// collectors (OTLP/HTTP JSON, the origin's JSON POST). Owns the relay's sink chain:
// store -> HTTP metrics -> tap.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/session.h"

namespace netprof {

class ExchangeSink;
class RouteStore;
class RouteNamer;
class ScopeRegistry;

void add_output_options(CLI::App& app, ProfileOptions& options);

class Outputs {
 public:
  Outputs(const ProfileOptions& options, RouteStore& store, RouteNamer& namer);
  ~Outputs();
  ExchangeSink& sink();
  // Node mode, before start(): pod labels on /metrics, the pods grouping on /stats and pushes.
  void set_scopes(const ScopeRegistry* scopes);
  // Drops the metric series of `scope` (a pod gone for longer than its expiry time).
  void erase_scope(uint32_t scope);
  // Starts the admin server and pushers; false (after printing why) if an explicitly
  // requested admin address cannot be bound.
  bool start();
  void stop();  // final pushes, then the admin server

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace netprof
