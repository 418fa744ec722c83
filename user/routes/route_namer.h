// Turns a raw request-target into the route that stats are keyed by, bounding cardinality:
//  1. the query string and fragment are dropped (they may carry secrets) unless keep_query;
//     path parameters (";jsessionid=...") are dropped, and segments that look like secrets
//     (routes/secrets.h: JWTs, e-mail addresses, API keys, random tokens) become "{redacted}",
//     also in a kept query's values (unless redact is off);
//  2. the first user pattern that matches names the route ("/users/{id}");
//  3. otherwise ID-like segments (numbers, UUIDs, long hex, tokens) become "{id}";
//  4. and a position (the templated prefix before a segment) that has seen more than
//     max_segment_values distinct literals is collapsed for good: its segment becomes "{*}"
//     (Beyla's low-cardinality idea: a segment with that many values is a parameter).
// A file extension survives collapsing ("/img/{id}.jpg") so assets stay recognisable.
// The route is always valid UTF-8 without control characters (other bytes become %XX).
// Everything collapsed is counted (counters()), never lost silently.
#pragma once

#include <atomic>
#include <shared_mutex>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "routes/route_pattern.h"

namespace netprof {

struct RouteNamerOptions {
  bool keep_query = false;           // store the query string too (off by default: privacy)
  std::vector<RoutePattern> patterns;  // tried in order; the first match wins
  bool collapse_ids = true;
  bool redact = true;                // secrets -> {redacted}, path parameters dropped
  size_t max_segment_values = 100;   // distinct literals per position before it collapses; 0 = off
  size_t max_positions = 10000;      // positions tracked; segments at untracked ones collapse
  // Several relay workers name routes at once: the per-position state is then shared under a
  // reader/writer lock (writers only when a position sees a new value). Off: one caller, no
  // lock at all, as with a single worker.
  bool concurrent = false;
};

// Monotonic totals, readable from any thread.
struct RouteNamerCounters {
  uint64_t pattern_matches = 0;      // requests named by a user pattern
  uint64_t id_segments = 0;          // segments replaced by {id}
  uint64_t capped_segments = 0;      // segments replaced by {*} (position over its value cap)
  uint64_t collapsed_positions = 0;  // positions that went over the cap (or were untracked)
  uint64_t redacted_segments = 0;    // segments and query values replaced by {redacted}
};

class RouteNamer {
 public:
  explicit RouteNamer(RouteNamerOptions options = {});
  virtual ~RouteNamer();
  RouteNamer(const RouteNamer&) = delete;
  RouteNamer& operator=(const RouteNamer&) = delete;

  // Writes the route for `target` into `out` (reusing its capacity: no allocation once warm,
  // except the first time a position sees a new value). Not const: templating keeps
  // per-position cardinality state. Without options.concurrent, callers serialise calls (one
  // relay worker does); with it, use the overload that takes the caller's own Scratch.
  virtual void name(std::string_view target, std::string& out);

  // Per-caller working memory for concurrent naming (one per relay worker).
  struct Scratch {
    std::string clean, path;
  };
  // Safe from several threads at once when options.concurrent; does not update
  // last_route_for().
  void name(std::string_view target, std::string& out, Scratch& scratch);

  // The route of the most recent single-caller name() call, if it was for `target`; else an
  // empty view. Lets later sinks on the same thread reuse the naming instead of redoing it.
  std::string_view last_route_for(std::string_view target) const;

  RouteNamerCounters counters() const;
  const RouteNamerOptions& options() const { return options_; }

 private:
  struct Positions;
  void template_path(std::string_view path, std::string& out);
  // Whether the literal `segment` after `prefix` keeps its name (else it becomes {*}); records
  // the value. Takes the positions lock when options_.concurrent.
  bool keep_literal(std::string_view prefix, std::string_view segment);
  bool keep_literal_locked(std::string_view prefix, std::string_view segment);
  void append_query(std::string_view query, std::string& out);

  RouteNamerOptions options_;
  std::unique_ptr<Positions> positions_;
  std::shared_mutex positions_mu_;  // guards positions_ when options_.concurrent
  std::string last_target_, last_route_;
  Scratch scratch_;  // the single-caller name()'s
  std::atomic<uint64_t> pattern_matches_{0}, id_segments_{0}, capped_segments_{0},
      collapsed_positions_{0}, redacted_segments_{0};
};

}  // namespace netprof
