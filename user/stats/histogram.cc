#include "stats/histogram.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

namespace netprof {
namespace {

constexpr double kGamma = (1 + LatencyHistogram::kRelativeAccuracy) /
                          (1 - LatencyHistogram::kRelativeAccuracy);
constexpr double kRepresentativeFactor = 2 / (kGamma + 1);
constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr size_t count_buckets() {
  double upper = LatencyHistogram::kMinValue;
  size_t i = 0;
  while (upper < LatencyHistogram::kMaxValue) {
    upper *= kGamma;
    ++i;
  }
  return i + 1;
}
constexpr size_t kBuckets = count_buckets();  // 1102 for a = 1%

// Upper edges gamma^i, built by repeated multiplication at compile time (no static-init guard
// on the hot path; the accumulated rounding is ~1e-13 relative, far below the 1% bound).
constexpr std::array<double, kBuckets> make_upper_bounds() {
  std::array<double, kBuckets> upper{};
  double b = LatencyHistogram::kMinValue;
  for (size_t i = 0; i < kBuckets; ++i) {
    upper[i] = b;
    b *= kGamma;
  }
  return upper;
}
constexpr std::array<double, kBuckets> kUpper = make_upper_bounds();

// 1 / log2(gamma), so that log2(v) * kInvLog2Gamma = log_gamma(v).
const double kInvLog2Gamma = 1.0 / std::log2(kGamma);

// log2 of a double without calling log: exponent bits plus a cubic fit of log2(1+x) on
// [0,1) (max error 0.0013, against a bucket width of 0.029 in log2 units). The estimate is
// then corrected against the exact bucket edges, so the fit only affects speed.
inline double fast_log2(double v) {
  const auto bits = std::bit_cast<uint64_t>(v);
  const auto exponent = static_cast<int>(bits >> 52) - 1023;  // v is positive and normal
  constexpr uint64_t kMantissa = (uint64_t{1} << 52) - 1;
  const double x = std::bit_cast<double>((bits & kMantissa) | std::bit_cast<uint64_t>(1.0)) - 1.0;
  return exponent + x * (1.4234853174046145 + x * (-0.5877337739803938 + x * 0.16555884902003812));
}

}  // namespace

size_t LatencyHistogram::bucket_count() { return kBuckets; }
double LatencyHistogram::bucket_upper_bound(size_t index) { return kUpper[index]; }
double LatencyHistogram::bucket_representative(size_t index) {
  return kUpper[index] * kRepresentativeFactor;
}

size_t LatencyHistogram::bucket_index(double value) {
  if (!(value > kMinValue)) return 0;  // also NaN
  if (value >= kMaxValue) return kBuckets - 1;
  auto index = static_cast<size_t>(fast_log2(value) * kInvLog2Gamma) + 1;  // ~ceil
  index = std::clamp<size_t>(index, 1, kBuckets - 1);
  // Bucket i holds (upper[i-1], upper[i]]. Both loops end: upper[0] = kMinValue < value <
  // kMaxValue <= upper[kBuckets-1].
  while (value > kUpper[index]) ++index;
  while (value <= kUpper[index - 1]) --index;
  return index;
}

// A first window of 16 buckets spans values within a factor 1.37: enough for a route whose
// latency is steady, 64 bytes.
constexpr size_t kInitialWidth = 16;

LatencyHistogram::LatencyHistogram() : min_(kInf), max_(-kInf) {}

LatencyHistogram::LatencyHistogram(const LatencyHistogram& other)
    : buckets_(other.width_ ? new uint32_t[other.width_] : nullptr), lo_(other.lo_),
      width_(other.width_), count_(other.count_), sum_(other.sum_), min_(other.min_),
      max_(other.max_) {
  if (width_) std::memcpy(buckets_.get(), other.buckets_.get(), width_ * sizeof(uint32_t));
}

LatencyHistogram& LatencyHistogram::operator=(const LatencyHistogram& other) {
  if (this == &other) return *this;
  if (width_ != other.width_) {
    buckets_.reset(other.width_ ? new uint32_t[other.width_] : nullptr);
    width_ = other.width_;
  }
  lo_ = other.lo_;
  if (width_) std::memcpy(buckets_.get(), other.buckets_.get(), width_ * sizeof(uint32_t));
  count_ = other.count_;
  sum_ = other.sum_;
  min_ = other.min_;
  max_ = other.max_;
  return *this;
}

LatencyHistogram::LatencyHistogram(LatencyHistogram&& other) noexcept
    : buckets_(std::move(other.buckets_)), lo_(std::exchange(other.lo_, 0)),
      width_(std::exchange(other.width_, 0)), count_(std::exchange(other.count_, 0)),
      sum_(std::exchange(other.sum_, 0)), min_(std::exchange(other.min_, kInf)),
      max_(std::exchange(other.max_, -kInf)) {}

LatencyHistogram& LatencyHistogram::operator=(LatencyHistogram&& other) noexcept {
  if (this == &other) return *this;
  buckets_ = std::move(other.buckets_);
  lo_ = std::exchange(other.lo_, 0);
  width_ = std::exchange(other.width_, 0);
  count_ = std::exchange(other.count_, 0);
  sum_ = std::exchange(other.sum_, 0);
  min_ = std::exchange(other.min_, kInf);
  max_ = std::exchange(other.max_, -kInf);
  return *this;
}

LatencyHistogram::~LatencyHistogram() = default;

void LatencyHistogram::cover(size_t first, size_t last) {
  const size_t old_lo = lo_, old_end = size_t{lo_} + width_;
  if (width_ != 0 && first >= old_lo && last < old_end) return;
  size_t lo = width_ ? std::min(first, old_lo) : first;
  size_t end = width_ ? std::max(last + 1, old_end) : last + 1;
  // Slack: at least double the old width (amortised growth), split over both sides so that
  // a drifting latency does not widen the window again at once.
  const size_t wanted = std::max({end - lo, size_t{width_} * 2, kInitialWidth});
  const size_t extra = wanted - (end - lo);
  const size_t below = std::min(lo, extra / 2);
  lo -= below;
  end = std::min(kBuckets, end + (extra - below));
  if (end - lo < wanted) lo = end > wanted ? end - wanted : 0;
  std::unique_ptr<uint32_t[]> grown(new uint32_t[end - lo]());
  if (width_) {
    std::memcpy(grown.get() + (old_lo - lo), buckets_.get(), width_ * sizeof(uint32_t));
  }
  buckets_ = std::move(grown);
  lo_ = static_cast<uint16_t>(lo);
  width_ = static_cast<uint16_t>(end - lo);
}

void LatencyHistogram::record(double value) {
  if (!(value >= 0)) value = 0;  // NaN or a negative duration: count it, as the smallest
  const size_t index = bucket_index(value);
  if (index - lo_ >= width_) cover(index, index);  // also when index < lo_ (wraps)
  uint32_t& bucket = buckets_[index - lo_];
  // Saturate instead of wrapping: ~4e9 values in one 2%-wide bucket of one route.
  bucket += bucket != std::numeric_limits<uint32_t>::max();
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  cover(other.lo_, size_t{other.lo_} + other.width_ - 1);
  uint32_t* dst = buckets_.get() + (other.lo_ - lo_);
  for (size_t i = 0; i < other.width_; ++i) {
    const uint64_t sum = uint64_t{dst[i]} + other.buckets_[i];
    dst[i] = static_cast<uint32_t>(std::min<uint64_t>(sum, std::numeric_limits<uint32_t>::max()));
  }
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::clear() {
  if (count_ == 0) return;
  std::fill_n(buckets_.get(), width_, 0u);
  count_ = 0;
  sum_ = 0;
  min_ = kInf;
  max_ = -kInf;
}

double LatencyHistogram::min() const { return count_ ? min_ : 0; }
double LatencyHistogram::max() const { return count_ ? max_ : 0; }
double LatencyHistogram::mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0; }

double LatencyHistogram::quantile(double q) const {
  double out = 0;
  quantiles(std::span<const double>(&q, 1), std::span<double>(&out, 1));
  return out;
}

void LatencyHistogram::quantiles(std::span<const double> qs, std::span<double> out) const {
  if (count_ == 0) {
    std::fill_n(out.begin(), qs.size(), 0.0);
    return;
  }
  // min_ and max_ were recorded, so their buckets are inside the window.
  const size_t last = bucket_index(max_);
  size_t index = bucket_index(min_);
  auto counts = [this](size_t bucket) { return buckets_[bucket - lo_]; };
  uint64_t cumulative = counts(index);
  for (size_t k = 0; k < qs.size(); ++k) {
    const double q = qs[k];
    if (!(q > 0)) { out[k] = min_; continue; }
    if (q >= 1) { out[k] = max_; continue; }
    // The order statistic at 0-based rank floor(q*(n-1)) is the (rank+1)-th value.
    const auto wanted = static_cast<uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
    while (cumulative < wanted && index < last) cumulative += counts(++index);
    // If saturated buckets left cumulative short, index is now `last`: the max's bucket.
    out[k] = std::clamp(bucket_representative(index), min_, max_);
  }
}

uint64_t LatencyHistogram::count_at_or_below(double bound) const {
  if (count_ == 0 || bound < min_) return 0;
  if (bound >= max_) return count_;
  const size_t last = bucket_index(max_);
  uint64_t total = 0;
  for (size_t i = bucket_index(min_); i <= last && bucket_representative(i) <= bound; ++i) {
    total += buckets_[i - lo_];
  }
  return total;
}

}  // namespace netprof
