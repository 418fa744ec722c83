#include "stats/flight_recorder.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

namespace netprof {
namespace {

// Microseconds from `from` to `t`, kNotSeen when `t` was not seen; clamped to what 32 bits hold
// (35 minutes either way).
int32_t offset_us(MonoNanos t, MonoNanos from) {
  if (t == 0 || from == 0) return FlightRecord::kNotSeen;
  const int64_t us = (t - from) / 1000;
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  return static_cast<int32_t>(std::clamp<int64_t>(us, -kMax, kMax));
}

void fill(FlightRecord& r, const Exchange& e, int64_t started_ms, const FlightOptions& o,
          MonoNanos duration) {
  const MonoNanos from = e.request_first_byte;
  r.started_ms = started_ms;
  r.first_byte = from;
  r.duration = duration;
  // A later request's accept says nothing about it.
  r.at_us[FlightRecord::kAccepted] =
      e.sequence <= 1 ? offset_us(e.accepted, from) : FlightRecord::kNotSeen;
  r.at_us[FlightRecord::kRequestHead] = offset_us(e.request_headers_done, from);
  r.at_us[FlightRecord::kUpstreamConnected] = offset_us(e.upstream_connected, from);
  r.at_us[FlightRecord::kRequestSent] = offset_us(e.request_sent, from);
  r.at_us[FlightRecord::kResponseHead] = offset_us(e.response_headers_done, from);
  // A failure has no last byte: the slot holds when it was given up (flight_json: "ended").
  r.at_us[FlightRecord::kLastByte] =
      offset_us(e.response_done != 0 ? e.response_done : e.ended, from);
  r.relay_held_us = static_cast<uint32_t>(
      std::min<int64_t>(e.relay_held / 1000, std::numeric_limits<uint32_t>::max()));
  r.sequence = e.sequence;
  r.connection_id = e.connection_id;
  r.request_bytes = e.request_bytes;
  r.response_bytes = e.response_bytes;
  r.status = e.status;
  r.grpc_status = e.grpc_status;
  r.method = e.method;
  r.outcome = e.outcome;
  r.protocol = e.protocol;
  r.grpc = e.grpc;
  r.peer = e.peer;
  r.has_path = o.raw_path;
  r.path_truncated = false;
  std::string_view path;
  if (o.raw_path) {  // opt-in
    path = e.path;
    if (!o.keep_query) path = path.substr(0, path.find('?'));
    r.path_truncated = e.path_truncated || path.size() > FlightOptions::kMaxPath;
    path = path.substr(0, FlightOptions::kMaxPath);
  }
  if (e.trace_id.empty() && !o.raw_path) {
    r.text.reset();
  } else {  // one allocation per kept record that has text
    r.text = std::make_shared<const FlightText>(
        FlightText{std::string(e.trace_id.substr(0, kMaxTraceIdBytes)), std::string(path)});
  }
}

// Room for one more, growing by doubling but never past n: the lists reach n once and keep
// their capacity from then on.
void grow(std::vector<FlightRecord>& list, size_t n) {
  if (list.size() == list.capacity())
    list.reserve(std::min(n, std::max<size_t>(1, list.size() * 2)));
}

bool slower(const FlightRecord& a, const FlightRecord& b) { return a.duration > b.duration; }
bool newer(const FlightRecord& a, const FlightRecord& b) { return a.first_byte > b.first_byte; }

}  // namespace

bool flight_failure(const Exchange& e) {
  return counts_as_error(e.outcome, e.status, e.grpc_status);
}

MonoNanos flight_duration(const Exchange& e) {
  return e.response_done ? e.total_time() : e.latency();
}

namespace {

// A failure without a response ranks nowhere, but is shown with how long the client waited
// before it was given up: a request the server never answered is not 0 ms.
MonoNanos shown_duration(const Exchange& e, MonoNanos duration) {
  if (duration != 0 || e.ended == 0 || e.timed_from() == 0 || e.ended < e.timed_from())
    return duration;
  return e.ended - e.timed_from();
}

}  // namespace

void FlightCandidates::keep(const Exchange& e, int64_t started_ms, const FlightOptions& o,
                            MonoNanos duration, bool is_failure, bool is_slow) {
  const size_t n = o.per_route;
  if (n == 0) return;
  if (is_slow) {
    FlightRecord* slot = nullptr;
    if (slow_.size() < n) {
      grow(slow_, n);
      slot = &slow_.emplace_back();
    } else {
      // The fastest kept one makes room (offer() checked that this one is slower).
      slot = &*std::min_element(slow_.begin(), slow_.end(), [](const auto& a, const auto& b) {
        return a.duration < b.duration;
      });
    }
    fill(*slot, e, started_ms, o, duration);
    if (slow_.size() == n) {
      threshold_ = std::min_element(slow_.begin(), slow_.end(), [](const auto& a, const auto& b) {
                     return a.duration < b.duration;
                   })->duration;
    }
  }
  if (is_failure) {
    FlightRecord* slot = nullptr;
    if (failures_.size() < n) {
      grow(failures_, n);
      slot = &failures_.emplace_back();
    } else {
      // Exchanges reach a worker in the order they end: the oldest kept one makes room.
      slot = &*std::min_element(
          failures_.begin(), failures_.end(),
          [](const auto& a, const auto& b) { return a.first_byte < b.first_byte; });
    }
    fill(*slot, e, started_ms, o, shown_duration(e, duration));
  }
}

void FlightCandidates::clear() {
  slow_.clear();
  failures_.clear();
  threshold_ = 0;
}

std::vector<FlightRecord> FlightCandidates::take_slow() {
  threshold_ = 0;
  return std::exchange(slow_, {});
}

std::vector<FlightRecord> FlightCandidates::take_failures() { return std::exchange(failures_, {}); }

void FlightCandidates::release() {
  std::vector<FlightRecord>().swap(slow_);
  std::vector<FlightRecord>().swap(failures_);
  threshold_ = 0;
}

MonoNanos flight_floor(const FlightViewPtr& view, size_t per_route) {
  if (!view || per_route == 0 || view->slow.size() < per_route) return 0;
  return view->slow.back().duration;
}

FlightViewPtr roll_flight(const FlightViewPtr& view, uint64_t window) {
  if (!view || view->window >= window) return view;
  auto rolled = std::make_shared<FlightView>();
  rolled->window = window;
  if (view->window + 1 == window) rolled->previous = view->slow;
  rolled->failures = view->failures;
  return rolled;
}

FlightViewPtr merge_flight(const FlightViewPtr& view, FlightCandidates& delta, size_t per_route,
                           uint64_t window) {
  if (per_route == 0 || delta.empty()) return view;
  const FlightViewPtr current = roll_flight(view, window);
  // Only a record that would be kept makes a new view: usually none once a window is warm.
  const std::vector<FlightRecord>* slow = current ? &current->slow : nullptr;
  const std::vector<FlightRecord>* failures = current ? &current->failures : nullptr;
  const bool slow_changes =
      std::any_of(delta.slow().begin(), delta.slow().end(), [&](const auto& r) {
        return slow == nullptr || slow->size() < per_route || r.duration > slow->back().duration;
      });
  const bool failures_change =
      std::any_of(delta.failures().begin(), delta.failures().end(), [&](const auto& r) {
        return failures == nullptr || failures->size() < per_route ||
               r.first_byte > failures->back().first_byte;
      });
  if (!slow_changes && !failures_change) return current;

  auto next = current ? std::make_shared<FlightView>(*current) : std::make_shared<FlightView>();
  next->window = std::max(next->window, window);
  // The best per_route of both into a list of exactly that capacity: a view lives until the
  // next change, and a list grown by insert would keep room for twice as many records.
  auto keep_best = [per_route](std::vector<FlightRecord>& list,
                               const std::vector<FlightRecord>& more, auto better, auto take) {
    if (list.empty() && more.size() <= per_route) {
      list = take();
      std::sort(list.begin(), list.end(), better);
      return;
    }
    std::vector<FlightRecord> all;
    all.reserve(list.size() + more.size());
    all.insert(all.end(), list.begin(), list.end());
    all.insert(all.end(), more.begin(), more.end());
    std::vector<FlightRecord> best(std::min(all.size(), per_route));
    std::partial_sort_copy(all.begin(), all.end(), best.begin(), best.end(), better);
    list = std::move(best);
  };
  if (slow_changes) keep_best(next->slow, delta.slow(), slower, [&] { return delta.take_slow(); });
  if (failures_change)
    keep_best(next->failures, delta.failures(), newer, [&] { return delta.take_failures(); });
  return next;
}

}  // namespace netprof
