// Writes the Prometheus text exposition format 0.0.4: HELP/TYPE once per family, label
// values escaped (\\, \", \n), histograms as cumulative _bucket{le} + _sum + _count.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace netprof {

using Label = std::pair<std::string_view, std::string_view>;

class PrometheusWriter {
 public:
  explicit PrometheusWriter(std::string& out) : out_(out) {}

  // Starts a family; samples follow with sample(). type: counter, gauge, histogram.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::initializer_list<Label> labels, double value);
  void sample(std::string_view name, std::span<const Label> labels, double value);
  // One histogram series: `counts[i]` values fell in (bounds[i-1], bounds[i]], the last
  // count (index bounds.size()) above the last bound.
  void histogram(std::string_view name, std::span<const Label> labels,
                 std::span<const double> bounds, std::span<const uint64_t> counts, double sum);

  // Shorthand for a family with one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, double value);

 private:
  void labels(std::span<const Label> labels, std::string_view extra_name = {},
              std::string_view extra_value = {});
  void number(double value);
  std::string& out_;
};

// Shortest text that reads back as the same double ("0.005", "1e+06", "+Inf").
std::string format_double(double value);
void append_escaped_label_value(std::string& out, std::string_view value);

}  // namespace netprof
