// Writes the Prometheus text exposition format 0.0.4: HELP/TYPE once per family, label
// values escaped (\\, \", \n), histograms as cumulative _bucket{le} + _sum + _count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace netprof {

using Label = std::pair<std::string_view, std::string_view>;

// One example exchange behind a histogram bucket (OpenMetrics exemplar): its trace id when the
// request carried one, else netprof's request id (http/exchange.h), which /slow and tap show.
struct Exemplar {
  static constexpr size_t kMaxId = 64;
  double value = 0;     // the observed value (seconds)
  int64_t unix_ms = 0;  // when; 0 = no exemplar
  uint16_t bucket = 0;  // the histogram bucket it belongs to (index into the counts)
  bool trace = false;   // id is a trace id (label trace_id), else a request id (request_id)
  uint8_t id_len = 0;
  char id[kMaxId] = {};
  std::string_view id_view() const { return {id, id_len}; }
  void set(double v, int64_t ms, bool is_trace, std::string_view text);
};

enum class ExpositionFormat : uint8_t {
  kText,         // Prometheus text 0.0.4
  kOpenMetrics,  // OpenMetrics 1.0: exemplars on histogram buckets, counter families named
                 // without _total, "# EOF" at the end (finish())
};

class PrometheusWriter {
 public:
  explicit PrometheusWriter(std::string& out, ExpositionFormat format = ExpositionFormat::kText)
      : out_(out), format_(format) {}
  ExpositionFormat format() const { return format_; }
  // OpenMetrics: the "# EOF" line. Nothing for the text format.
  void finish();

  // Starts a family; samples follow with sample(). type: counter, gauge, histogram.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::initializer_list<Label> labels, double value);
  void sample(std::string_view name, std::span<const Label> labels, double value);
  // One histogram series: `counts[i]` values fell in (bounds[i-1], bounds[i]], the last
  // count (index bounds.size()) above the last bound.
  // With OpenMetrics, `exemplars` (at most one per bucket, ascending by `bucket`; only buckets
  // that have one) are written on their bucket lines.
  void histogram(std::string_view name, std::span<const Label> labels,
                 std::span<const double> bounds, std::span<const uint64_t> counts, double sum,
                 std::span<const Exemplar> exemplars = {});

  // Shorthand for a family with one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, double value);

 private:
  void labels(std::span<const Label> labels, std::string_view extra_name = {},
              std::string_view extra_value = {});
  void number(double value);
  void exemplar(const Exemplar& e);
  std::string& out_;
  ExpositionFormat format_;
};

// Shortest text that reads back as the same double ("0.005", "1e+06", "+Inf").
std::string format_double(double value);
void append_escaped_label_value(std::string& out, std::string_view value);

}  // namespace netprof
