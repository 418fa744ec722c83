// Log-bucketed histogram with bounded relative error (DDSketch-style). Values are positive
// doubles (netprof records microseconds).
//
// Storage is a window over the 1,102 buckets of the layout: the counters of the buckets from
// the lowest to the highest value seen so far (plus slack), allocated at the first record()
// and widened (at least doubled) when a value falls outside it. A route with a few samples
// costs tens of bytes instead of 4.4 KiB; a route whose latencies span 1 us .. 1 s still
// costs under 3 KiB. Recording allocates only when the window widens, at most ~7 times in a
// histogram's life; a value inside the window never allocates.
//
// Bucket i > 0 holds values in (gamma^(i-1), gamma^i] with gamma = (1+a)/(1-a); bucket 0
// holds everything <= kMinValue (and NaN/negatives), the last bucket everything above
// kMaxValue. A bucket is reported as 2*gamma^i/(gamma+1), which is within a of every value
// in it; quantiles are also clamped to the exact [min, max]. So for values in
// [kMinValue, kMaxValue] any quantile is within kRelativeAccuracy of the exact order statistic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace netprof {

class LatencyHistogram {
 public:
  static constexpr double kRelativeAccuracy = 0.01;  // any quantile within 1% of the true value
  static constexpr double kMinValue = 1.0;           // smaller values share the first bucket
  static constexpr double kMaxValue = 3.6e9;         // one hour in microseconds; larger clamp

  LatencyHistogram();
  LatencyHistogram(const LatencyHistogram& other);
  LatencyHistogram& operator=(const LatencyHistogram& other);
  // A moved-from histogram is empty and may only be assigned to or destroyed.
  LatencyHistogram(LatencyHistogram&& other) noexcept;
  LatencyHistogram& operator=(LatencyHistogram&& other) noexcept;
  ~LatencyHistogram();

  void record(double value);
  // Exact: the result is the histogram of both inputs' values (bucket counts add).
  void merge(const LatencyHistogram& other);
  // Back to empty, keeping the window (a recycled delta buffer does not allocate again).
  void clear();
  // Bytes of bucket storage held (the window), for memory accounting and tests.
  size_t storage_bytes() const { return size_t{width_} * sizeof(uint32_t); }

  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  double min() const;   // exact; 0 when empty
  double max() const;   // exact; 0 when empty
  double mean() const;  // exact; 0 when empty
  // q in [0,1]: the bucket holding the order statistic at rank floor(q*(count-1)). Within
  // kRelativeAccuracy of the exact value; 0 when empty.
  double quantile(double q) const;
  // Several quantiles in one pass over the buckets; qs must be ascending, out.size() >= qs.size().
  void quantiles(std::span<const double> qs, std::span<double> out) const;

  // Bucket access for exporters (Prometheus cumulative buckets): number of values <= bound.
  // Exact when bound < min or bound >= max; otherwise a value counts as <= bound when its
  // bucket's representative is, so the answer is off only by values within 1% of bound.
  uint64_t count_at_or_below(double bound) const;

  // The bucket layout, shared by all histograms.
  static size_t bucket_count();
  static size_t bucket_index(double value);
  static double bucket_upper_bound(size_t index);     // gamma^index
  static double bucket_representative(size_t index);  // 2*gamma^index/(gamma+1)

 private:
  // Makes the window cover [first, last] (bucket indexes), widening it with slack.
  void cover(size_t first, size_t last);

  std::unique_ptr<uint32_t[]> buckets_;  // saturating counters of buckets [lo_, lo_ + width_)
  uint16_t lo_ = 0, width_ = 0;          // width_ 0: nothing allocated yet
  uint64_t count_ = 0;
  double sum_ = 0, min_ = 0, max_ = 0;
};

}  // namespace netprof
