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

LatencyHistogram::LatencyHistogram()
    : buckets_(new uint32_t[kBuckets]()), min_(kInf), max_(-kInf) {}

LatencyHistogram::LatencyHistogram(const LatencyHistogram& other)
    : buckets_(new uint32_t[kBuckets]),
      count_(other.count_), sum_(other.sum_), min_(other.min_), max_(other.max_) {
  std::memcpy(buckets_.get(), other.buckets_.get(), kBuckets * sizeof(uint32_t));
}

LatencyHistogram& LatencyHistogram::operator=(const LatencyHistogram& other) {
  if (this == &other) return *this;
  if (!buckets_) buckets_.reset(new uint32_t[kBuckets]);
  std::memcpy(buckets_.get(), other.buckets_.get(), kBuckets * sizeof(uint32_t));
  count_ = other.count_;
  sum_ = other.sum_;
  min_ = other.min_;
  max_ = other.max_;
  return *this;
}

LatencyHistogram::LatencyHistogram(LatencyHistogram&& other) noexcept
    : buckets_(std::move(other.buckets_)),
      count_(std::exchange(other.count_, 0)), sum_(std::exchange(other.sum_, 0)),
      min_(std::exchange(other.min_, kInf)), max_(std::exchange(other.max_, -kInf)) {}

LatencyHistogram& LatencyHistogram::operator=(LatencyHistogram&& other) noexcept {
  if (this == &other) return *this;
  buckets_ = std::move(other.buckets_);
  count_ = std::exchange(other.count_, 0);
  sum_ = std::exchange(other.sum_, 0);
  min_ = std::exchange(other.min_, kInf);
  max_ = std::exchange(other.max_, -kInf);
  return *this;
}

LatencyHistogram::~LatencyHistogram() = default;

void LatencyHistogram::record(double value) {
  if (!(value >= 0)) value = 0;  // NaN or a negative duration: count it, as the smallest
  uint32_t& bucket = buckets_[bucket_index(value)];
  // Saturate instead of wrapping: ~4e9 values in one 2%-wide bucket of one route.
  bucket += bucket != std::numeric_limits<uint32_t>::max();
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBuckets; ++i) {
    const uint64_t sum = uint64_t{buckets_[i]} + other.buckets_[i];
    buckets_[i] = static_cast<uint32_t>(std::min<uint64_t>(sum, std::numeric_limits<uint32_t>::max()));
  }
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
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
  const size_t last = bucket_index(max_);
  size_t index = bucket_index(min_);
  uint64_t cumulative = buckets_[index];
  for (size_t k = 0; k < qs.size(); ++k) {
    const double q = qs[k];
    if (!(q > 0)) { out[k] = min_; continue; }
    if (q >= 1) { out[k] = max_; continue; }
    // The order statistic at 0-based rank floor(q*(n-1)) is the (rank+1)-th value.
    const auto wanted = static_cast<uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
    while (cumulative < wanted && index < last) cumulative += buckets_[++index];
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
    total += buckets_[i];
  }
  return total;
}

}  // namespace netprof
