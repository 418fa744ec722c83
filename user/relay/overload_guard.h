// The overload guard's decisions, as a state machine with no clock and no I/O of its own (the
// session feeds it what the workers' loop meters saw, relay/loop_meter.h, and applies what it
// decides; tests feed it a fake clock).
//
// A worker is lagging while one of its loop turns took lag_threshold or longer within the last
// hold = min(1 s, sustain / 2): one long turn is a hiccup, long turns that keep coming are
// overload. A worker lagging for `sustain` without a break gets one pod detached: the one whose
// traffic took most of the worker's long turns over that time (pods are whatever keys the
// mode gives: node mode's pods, attach's one pod). If that pod is detached already (its
// relayed connections still keep the loop busy), nothing more is detached: the others are not
// to blame. After a decision the worker must lag for another full `sustain` before the next.
//
// A detached pod is re-attached after its cool-down. A pod detached again within one
// cool-down of its re-attachment gets twice the cool-down (at most kMaxBackoff times the
// setting): a pod cannot flap faster than once per cool-down + sustain, and a pod that keeps
// overloading the relay spends ever more time detached.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "http/exchange.h"  // MonoNanos

namespace netprof {

struct OverloadGuardOptions {
  MonoNanos lag_threshold = 0;  // 0: never detach (the loop is only measured)
  MonoNanos sustain = 2'000'000'000;
  MonoNanos cooldown = 30'000'000'000;
};

class OverloadGuard {
 public:
  static constexpr MonoNanos kMaxHold = 1'000'000'000;
  static constexpr int kMaxBackoff = 8;

  // What one worker's meter saw since the previous step.
  struct WorkerSample {
    MonoNanos lag_max = 0;                      // longest turn (or the turn running now)
    std::map<uint32_t, MonoNanos> busy_by_pod;  // long turns' time, by pod
  };
  struct Decision {
    bool detach = true;  // false: re-attach
    uint32_t pod = 0;
    std::string reason;  // why, in words (no pod name: the caller knows it)
  };
  struct PodState {
    bool detached = false;
    MonoNanos since = 0;     // of the current state
    MonoNanos until = 0;     // detached: when it is re-attached
    MonoNanos cooldown = 0;  // of the last detachment
    MonoNanos reattached_at = 0;
    uint64_t detaches = 0;
    std::string reason;  // of the last change
  };

  OverloadGuard(OverloadGuardOptions options, size_t workers);

  // One step: `samples` has one entry per worker. Returns what to apply now, in order.
  std::vector<Decision> step(MonoNanos now, const std::vector<WorkerSample>& samples);
  // The caller could not apply `decision` (`error` says why): a detach is undone (the pod is
  // attached after all), a pod that could not be re-attached is forgotten (it is gone).
  void failed(const Decision& decision, MonoNanos now, const std::string& error);
  // The pod is gone (node mode): forget it.
  void forget(uint32_t pod);

  bool enabled() const { return options_.lag_threshold > 0; }
  const OverloadGuardOptions& options() const { return options_; }
  // Pods the guard has acted on (others were never detached).
  const std::map<uint32_t, PodState>& pods() const { return pods_; }
  uint64_t detaches() const { return detaches_; }
  uint64_t version() const { return version_; }  // changes with every state change

 private:
  struct Worker {
    MonoNanos last_over = -1;            // when a turn last took lag_threshold or longer
    MonoNanos over_since = -1;           // start of the current lagging stretch; -1: not lagging
    MonoNanos peak = 0;                  // longest turn in the stretch
    std::map<uint32_t, MonoNanos> busy;  // by pod, over the stretch
  };
  MonoNanos hold() const;

  OverloadGuardOptions options_;
  std::vector<Worker> workers_;
  std::map<uint32_t, PodState> pods_;
  uint64_t detaches_ = 0;
  uint64_t version_ = 0;
};

// "212 ms", "2.5 s": for reasons and logs.
std::string duration_text(MonoNanos ns);

}  // namespace netprof
