// The overload guard's state machine on a fake clock: threshold, how long lag must persist,
// which pod goes, the cool-down and its doubling for a pod that keeps coming back.
#include "relay/overload_guard.h"

#include <gtest/gtest.h>

namespace netprof {
namespace {

constexpr MonoNanos kMs = 1'000'000;
constexpr MonoNanos kTick = 100 * kMs;

OverloadGuardOptions options() {
  OverloadGuardOptions o;
  o.lag_threshold = 100 * kMs;
  o.sustain = 1000 * kMs;
  o.cooldown = 5000 * kMs;
  return o;
}

OverloadGuard::WorkerSample sample(MonoNanos lag, std::map<uint32_t, MonoNanos> busy = {}) {
  return OverloadGuard::WorkerSample{lag, std::move(busy)};
}

// Runs the guard tick by tick from `now` for `ticks`, every worker seeing `each` per tick;
// returns every decision with the time it was made.
struct Ticker {
  explicit Ticker(OverloadGuard& g) : guard(g) {}
  OverloadGuard& guard;
  MonoNanos now = 0;
  std::vector<std::pair<MonoNanos, OverloadGuard::Decision>> decisions;
  void ticks(int n, const std::vector<OverloadGuard::WorkerSample>& each) {
    for (int i = 0; i < n; ++i) {
      now += kTick;
      for (auto& d : guard.step(now, each)) decisions.emplace_back(now, d);
    }
  }
};

TEST(OverloadGuard, OffWhenTheThresholdIsZero) {
  OverloadGuardOptions o = options();
  o.lag_threshold = 0;
  OverloadGuard guard(o, 1);
  Ticker run{guard};
  run.ticks(100, {sample(10'000 * kMs, {{7, 10'000 * kMs}})});
  EXPECT_TRUE(run.decisions.empty());
  EXPECT_FALSE(guard.enabled());
}

TEST(OverloadGuard, LagUnderTheThresholdNeverDetaches) {
  OverloadGuard guard(options(), 1);
  Ticker run{guard};
  run.ticks(100, {sample(99 * kMs, {{7, 90 * kMs}})});
  EXPECT_TRUE(run.decisions.empty());
}

TEST(OverloadGuard, DetachesTheBusiestPodOnceLagPersistsForTheWholeDuration) {
  OverloadGuard guard(options(), 1);
  Ticker run{guard};
  // The first lagging tick starts the stretch; ten ticks later it has lasted 1000 ms.
  run.ticks(10, {sample(150 * kMs, {{7, 120 * kMs}, {8, 10 * kMs}})});
  EXPECT_TRUE(run.decisions.empty()) << "lagging for 900 ms of the 1000 required";
  run.ticks(1, {sample(150 * kMs, {{7, 120 * kMs}, {8, 10 * kMs}})});
  ASSERT_EQ(run.decisions.size(), 1u);
  EXPECT_TRUE(run.decisions[0].second.detach);
  EXPECT_EQ(run.decisions[0].second.pod, 7u);
  EXPECT_NE(run.decisions[0].second.reason.find("92%"), std::string::npos)
      << run.decisions[0].second.reason;
  EXPECT_TRUE(guard.pods().at(7).detached);
  EXPECT_EQ(guard.pods().count(8), 0u) << "the other pod is not touched";
  EXPECT_EQ(guard.detaches(), 1u);
}

TEST(OverloadGuard, AHiccupIsNotOverload) {
  OverloadGuard guard(options(), 1);
  Ticker run{guard};
  // One long turn, then calm: lagging only for the hold time (sustain / 2), then reset.
  run.ticks(1, {sample(500 * kMs, {{7, 500 * kMs}})});
  run.ticks(30, {sample(1 * kMs)});
  // Long turns 700 ms apart: each one's hold (500 ms) ends before the next comes.
  for (int i = 0; i < 5; ++i) {
    run.ticks(1, {sample(500 * kMs, {{7, 500 * kMs}})});
    run.ticks(6, {sample(1 * kMs)});
  }
  EXPECT_TRUE(run.decisions.empty());
}

TEST(OverloadGuard, LongTurnsThatKeepComingWithinTheHoldAreOverload) {
  OverloadGuard guard(options(), 1);
  Ticker run{guard};
  // A 400 ms turn every 400 ms: some ticks see no turn end, but the hold bridges them.
  for (int i = 0; i < 3 && run.decisions.empty(); ++i) {
    run.ticks(1, {sample(400 * kMs, {{7, 400 * kMs}})});
    run.ticks(3, {sample(0)});
  }
  ASSERT_EQ(run.decisions.size(), 1u);
  EXPECT_EQ(run.decisions[0].second.pod, 7u);
}

TEST(OverloadGuard, LagNobodysTrafficExplainsDetachesNothing) {
  OverloadGuard guard(options(), 1);
  Ticker run{guard};
  run.ticks(50, {sample(300 * kMs)});  // e.g. the whole machine starved
  EXPECT_TRUE(run.decisions.empty());
}

TEST(OverloadGuard, ReattachesAfterTheCooldownAndDoublesItForAPodThatComesBack) {
  OverloadGuard guard(options(), 1);
  Ticker run{guard};
  const auto hot = sample(150 * kMs, {{7, 140 * kMs}});
  run.ticks(11, {hot});
  ASSERT_EQ(run.decisions.size(), 1u);
  const MonoNanos detached_at = run.decisions[0].first;
  // Its relayed connections keep the loop busy: nobody else is detached meanwhile, and the
  // pod stays detached for the whole cool-down.
  run.ticks(49, {hot});
  ASSERT_EQ(run.decisions.size(), 1u);
  run.ticks(1, {sample(0)});
  ASSERT_EQ(run.decisions.size(), 2u);
  EXPECT_FALSE(run.decisions[1].second.detach);
  EXPECT_EQ(run.decisions[1].first - detached_at, 5000 * kMs);
  EXPECT_FALSE(guard.pods().at(7).detached);

  // Overloading again at once: detached again after `sustain`, now for twice as long.
  run.ticks(11, {hot});
  ASSERT_EQ(run.decisions.size(), 3u);
  EXPECT_TRUE(run.decisions[2].second.detach);
  EXPECT_EQ(guard.pods().at(7).cooldown, 10'000 * kMs);
  // However long it goes on, a detachment never comes sooner than cool-down + sustain after
  // the previous one, and the cool-down stops growing at kMaxBackoff times the setting.
  run.ticks(3000, {hot});
  MonoNanos previous = 0;
  for (const auto& [at, d] : run.decisions) {
    if (!d.detach) continue;
    if (previous != 0) {
      EXPECT_GE(at - previous, 5000 * kMs + 1000 * kMs);
    }
    previous = at;
  }
  EXPECT_EQ(guard.pods().at(7).cooldown, 5000 * kMs * OverloadGuard::kMaxBackoff);
}

TEST(OverloadGuard, ACalmPodGetsTheBaseCooldownBack) {
  OverloadGuard guard(options(), 1);
  Ticker run{guard};
  const auto hot = sample(150 * kMs, {{7, 140 * kMs}});
  run.ticks(11, {hot});
  run.ticks(50, {sample(0)});  // re-attached after 5 s
  run.ticks(60, {sample(0)});  // calm for longer than a cool-down
  run.ticks(11, {hot});
  ASSERT_EQ(run.decisions.size(), 3u);
  EXPECT_EQ(guard.pods().at(7).cooldown, 5000 * kMs);
}

TEST(OverloadGuard, WorkersAreJudgedApart) {
  OverloadGuard guard(options(), 2);
  Ticker run{guard};
  // Worker 0 lags because of pod 7; worker 1 serves pod 8 and is fine.
  run.ticks(11, {sample(150 * kMs, {{7, 150 * kMs}}), sample(1 * kMs, {{8, 1 * kMs}})});
  ASSERT_EQ(run.decisions.size(), 1u);
  EXPECT_EQ(run.decisions[0].second.pod, 7u);
  EXPECT_EQ(guard.pods().count(8), 0u);
}

TEST(OverloadGuard, AFailedDetachLeavesThePodAttachedAndAFailedReattachForgetsIt) {
  OverloadGuard guard(options(), 1);
  Ticker run{guard};
  run.ticks(11, {sample(150 * kMs, {{7, 150 * kMs}})});
  ASSERT_EQ(run.decisions.size(), 1u);
  guard.failed(run.decisions[0].second, run.now, "no such pod");
  EXPECT_FALSE(guard.pods().at(7).detached);
  EXPECT_NE(guard.pods().at(7).reason.find("no such pod"), std::string::npos);

  run.ticks(10, {sample(150 * kMs, {{7, 150 * kMs}})});
  ASSERT_EQ(run.decisions.size(), 2u);
  run.ticks(50, {sample(0)});
  ASSERT_EQ(run.decisions.size(), 3u);
  guard.failed(run.decisions[2].second, run.now, "gone");
  EXPECT_EQ(guard.pods().count(7), 0u);
}

}  // namespace
}  // namespace netprof
