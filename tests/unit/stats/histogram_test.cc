#include "stats/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace netprof {
namespace {

constexpr double kTolerance = LatencyHistogram::kRelativeAccuracy * (1 + 1e-9);
const std::vector<double> kQuantiles = {0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9,
                                        0.95, 0.99, 0.999, 1};

// The exact order statistic the histogram promises to approximate.
double exact_quantile(const std::vector<double>& sorted, double q) {
  return sorted[static_cast<size_t>(q * static_cast<double>(sorted.size() - 1))];
}

void expect_accurate(std::vector<double> values, const std::string& name) {
  LatencyHistogram h;
  for (double v : values) h.record(v);
  std::sort(values.begin(), values.end());
  ASSERT_EQ(h.count(), values.size()) << name;
  EXPECT_EQ(h.min(), values.front()) << name;
  EXPECT_EQ(h.max(), values.back()) << name;
  double sum = 0;
  for (double v : values) sum += v;
  EXPECT_NEAR(h.mean(), sum / static_cast<double>(values.size()), 1e-9 * std::abs(h.mean())) << name;
  for (double q : kQuantiles) {
    const double exact = exact_quantile(values, q);
    const double got = h.quantile(q);
    EXPECT_LE(std::abs(got - exact), kTolerance * exact)
        << name << " q=" << q << " exact=" << exact << " got=" << got;
  }
  // The one-pass form agrees with the single quantile.
  std::vector<double> many(kQuantiles.size());
  h.quantiles(kQuantiles, many);
  for (size_t i = 0; i < kQuantiles.size(); ++i) {
    EXPECT_EQ(many[i], h.quantile(kQuantiles[i])) << name << " q=" << kQuantiles[i];
  }
}

std::vector<double> generate(size_t n, const std::function<double(std::mt19937_64&)>& draw) {
  std::mt19937_64 rng(42);
  std::vector<double> out(n);
  for (double& v : out) v = draw(rng);
  return out;
}

TEST(LatencyHistogram, UniformWithinOnePercent) {
  std::uniform_real_distribution<double> d(100, 100000);
  expect_accurate(generate(100000, [&](auto& rng) { return d(rng); }), "uniform");
}

TEST(LatencyHistogram, LognormalWithinOnePercent) {
  std::lognormal_distribution<double> d(7.0, 1.5);  // median ~1.1 ms, long tail
  expect_accurate(generate(100000, [&](auto& rng) { return 1 + d(rng); }), "lognormal");
}

TEST(LatencyHistogram, BimodalWithinOnePercent) {
  std::normal_distribution<double> cache_hit(300, 30), cache_miss(80000, 9000);
  std::bernoulli_distribution miss(0.2);
  expect_accurate(generate(100000,
                           [&](auto& rng) {
                             return std::max(1.0, miss(rng) ? cache_miss(rng) : cache_hit(rng));
                           }),
                  "bimodal");
}

TEST(LatencyHistogram, ConstantIsExact) {
  LatencyHistogram h;
  for (int i = 0; i < 1000; ++i) h.record(1234.5);
  for (double q : kQuantiles) EXPECT_EQ(h.quantile(q), 1234.5) << q;
  EXPECT_EQ(h.mean(), 1234.5);
}

TEST(LatencyHistogram, TinyValuesWithinOnePercent) {
  std::uniform_real_distribution<double> d(LatencyHistogram::kMinValue, 10);
  expect_accurate(generate(50000, [&](auto& rng) { return d(rng); }), "tiny");
}

TEST(LatencyHistogram, HugeValuesWithinOnePercent) {
  std::uniform_real_distribution<double> d(1e8, LatencyHistogram::kMaxValue);
  expect_accurate(generate(50000, [&](auto& rng) { return d(rng); }), "huge");
}

TEST(LatencyHistogram, WholeRangeLogUniformWithinOnePercent) {
  std::uniform_real_distribution<double> d(0, std::log(LatencyHistogram::kMaxValue));
  expect_accurate(generate(200000, [&](auto& rng) { return std::exp(d(rng)); }), "log-uniform");
}

TEST(LatencyHistogram, EveryValueLandsInTheBucketThatBoundsIt) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> d(0, std::log(LatencyHistogram::kMaxValue));
  std::vector<double> values;
  for (int i = 0; i < 200000; ++i) values.push_back(std::exp(d(rng)));
  // Edges themselves and their neighbours: where an approximate log would go wrong.
  for (size_t i = 1; i + 1 < LatencyHistogram::bucket_count(); ++i) {
    const double edge = LatencyHistogram::bucket_upper_bound(i);
    values.insert(values.end(), {edge, std::nextafter(edge, 0.0), std::nextafter(edge, 1e300)});
  }
  for (double v : values) {
    if (v <= LatencyHistogram::kMinValue || v >= LatencyHistogram::kMaxValue) continue;
    const size_t i = LatencyHistogram::bucket_index(v);
    ASSERT_GE(i, 1u) << v;
    ASSERT_LE(v, LatencyHistogram::bucket_upper_bound(i)) << v;
    ASSERT_GT(v, LatencyHistogram::bucket_upper_bound(i - 1)) << v;
    ASSERT_LE(std::abs(LatencyHistogram::bucket_representative(i) - v), kTolerance * v) << v;
  }
}

TEST(LatencyHistogram, LayoutCoversTheRangeInAboutElevenHundredBuckets) {
  const size_t n = LatencyHistogram::bucket_count();
  EXPECT_GE(LatencyHistogram::bucket_upper_bound(n - 1), LatencyHistogram::kMaxValue);
  EXPECT_LT(LatencyHistogram::bucket_upper_bound(n - 2), LatencyHistogram::kMaxValue);
  EXPECT_EQ(LatencyHistogram::bucket_upper_bound(0), LatencyHistogram::kMinValue);
  EXPECT_GT(n, 1000u);
  EXPECT_LT(n, 1200u);
}

TEST(LatencyHistogram, OutOfRangeValuesAreCountedAndClamped) {
  LatencyHistogram h;
  h.record(0.25);
  h.record(-5);          // a clock anomaly counts as 0
  h.record(std::nan(""));  // so does NaN
  h.record(1e12);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 1e12);
  EXPECT_EQ(h.quantile(1), 1e12);
  EXPECT_EQ(h.quantile(0), 0);
  // Below kMinValue only the bound holds: the answer stays within [min, kMinValue].
  EXPECT_LE(h.quantile(0.34), LatencyHistogram::kMinValue);
  EXPECT_EQ(LatencyHistogram::bucket_index(1e12), LatencyHistogram::bucket_count() - 1);
  EXPECT_EQ(LatencyHistogram::bucket_index(0.5), 0u);
}

TEST(LatencyHistogram, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0);
  EXPECT_EQ(h.quantile(0.5), 0);
  EXPECT_EQ(h.count_at_or_below(1e9), 0u);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> fast(5, 0.5), slow(10, 1);
  LatencyHistogram a, b, all;
  std::vector<double> values;
  for (int i = 0; i < 20000; ++i) {
    const double x = 1 + fast(rng), y = 1 + slow(rng);
    a.record(x);
    b.record(y);
    all.record(x);
    all.record(y);
    values.push_back(x);
    values.push_back(y);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_NEAR(a.mean(), all.mean(), 1e-9 * all.mean());  // only the summation order differs
  std::sort(values.begin(), values.end());
  for (double q : kQuantiles) {
    EXPECT_EQ(a.quantile(q), all.quantile(q)) << q;
    EXPECT_LE(std::abs(a.quantile(q) - exact_quantile(values, q)),
              kTolerance * exact_quantile(values, q)) << q;
  }
  LatencyHistogram empty;
  a.merge(empty);
  EXPECT_EQ(a.count(), all.count());
  empty.merge(a);
  EXPECT_EQ(empty.quantile(0.9), a.quantile(0.9));
}

TEST(LatencyHistogram, CountAtOrBelowMatchesExactCountsOutsideOnePercent) {
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> d(8, 1.2);
  std::vector<double> values;
  LatencyHistogram h;
  for (int i = 0; i < 50000; ++i) {
    values.push_back(1 + d(rng));
    h.record(values.back());
  }
  std::sort(values.begin(), values.end());
  auto exact_le = [&](double bound) {
    return static_cast<uint64_t>(std::upper_bound(values.begin(), values.end(), bound) - values.begin());
  };
  EXPECT_EQ(h.count_at_or_below(values.front() / 2), 0u);
  EXPECT_EQ(h.count_at_or_below(values.back()), values.size());
  EXPECT_EQ(h.count_at_or_below(1e300), values.size());
  uint64_t previous = 0;
  for (double bound : {10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 1e5, 1e6}) {
    const uint64_t got = h.count_at_or_below(bound);
    // Only values within 1% of the bound may be misplaced.
    EXPECT_GE(got, exact_le(bound * (1 - kTolerance))) << bound;
    EXPECT_LE(got, exact_le(bound * (1 + kTolerance))) << bound;
    EXPECT_GE(got, previous) << "cumulative counts never decrease";
    previous = got;
  }
}

TEST(LatencyHistogram, CopiesAreIndependentAndMovesLeaveTheSourceEmpty) {
  LatencyHistogram a;
  for (int i = 1; i <= 100; ++i) a.record(i * 10.0);
  const double median = a.quantile(0.5);
  LatencyHistogram copy(a);
  EXPECT_EQ(copy.quantile(0.5), median);
  for (int i = 0; i < 100; ++i) copy.record(1e6);
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(a.quantile(0.5), median);
  EXPECT_EQ(a.max(), 1000);
  EXPECT_EQ(copy.count(), 200u);

  LatencyHistogram assigned;
  assigned = copy;
  EXPECT_EQ(assigned.max(), 1e6);

  LatencyHistogram moved(std::move(copy));
  EXPECT_EQ(moved.count(), 200u);
  EXPECT_EQ(copy.count(), 0u);  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_EQ(copy.quantile(0.5), 0);
  copy = a;  // a moved-from histogram can be assigned to again
  copy.record(5);
  EXPECT_EQ(copy.count(), 101u);
  EXPECT_EQ(copy.min(), 5);
}

TEST(LatencyHistogram, StorageGrowsWithTheRangeOfValuesNotTheCount) {
  LatencyHistogram h;
  EXPECT_EQ(h.storage_bytes(), 0u);  // nothing until the first value
  for (int i = 0; i < 100000; ++i) h.record(1000 + i % 7);  // a steady route
  EXPECT_LE(h.storage_bytes(), 128u);
  // Values over six orders of magnitude: still at most the whole layout.
  for (double v = 1; v < 1e6; v *= 1.5) h.record(v);
  EXPECT_GT(h.storage_bytes(), 128u);
  EXPECT_LE(h.storage_bytes(), LatencyHistogram::bucket_count() * sizeof(uint32_t));
  LatencyHistogram everything;
  everything.record(0);
  everything.record(1e12);
  EXPECT_LE(everything.storage_bytes(), LatencyHistogram::bucket_count() * sizeof(uint32_t));
  EXPECT_EQ(everything.quantile(1), 1e12);
  EXPECT_EQ(everything.quantile(0), 0);
}

TEST(LatencyHistogram, WidensBelowAndAboveWithoutLosingCounts) {
  // Recorded in an order that makes the window grow downwards, then upwards, one bucket at
  // a time: every widening must move the counts already held.
  std::vector<double> values;
  for (double v = 5000; v > 2; v /= 1.019) values.push_back(v);
  for (double v = 5000; v < 4e6; v *= 1.021) values.push_back(v);
  for (int pass = 0; pass < 3; ++pass) values.insert(values.end(), values.begin(), values.end());
  expect_accurate(values, "widening");
}

TEST(LatencyHistogram, MergingDisjointWindowsIsExact) {
  LatencyHistogram low, high, all;
  for (int i = 0; i < 1000; ++i) {
    low.record(10 + i % 13);
    high.record(1e6 + i * 17.0);
    all.record(10 + i % 13);
    all.record(1e6 + i * 17.0);
  }
  LatencyHistogram merged;
  merged.merge(high);  // into an empty histogram first, then below its window
  merged.merge(low);
  EXPECT_EQ(merged.count(), all.count());
  for (double q : kQuantiles) EXPECT_EQ(merged.quantile(q), all.quantile(q)) << q;
  for (double bound : {5.0, 15.0, 20.0, 1e5, 1.005e6, 2e6}) {
    EXPECT_EQ(merged.count_at_or_below(bound), all.count_at_or_below(bound)) << bound;
  }
}

TEST(LatencyHistogram, ClearEmptiesButKeepsTheWindow) {
  LatencyHistogram h;
  for (int i = 1; i <= 1000; ++i) h.record(i);
  const size_t bytes = h.storage_bytes();
  h.clear();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile(0.5), 0);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.storage_bytes(), bytes);
  h.record(42);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.quantile(0.5), 42);
  EXPECT_EQ(h.min(), 42);
  EXPECT_EQ(h.storage_bytes(), bytes);
}

}  // namespace
}  // namespace netprof
