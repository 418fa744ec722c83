#include "export/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <vector>

#include "routes/utf8.h"

namespace netprof {

std::string format_double(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  // Whole numbers as integers ("100000", not "1e+05"): easier on humans reading bucket bounds.
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(value));
    return std::string(buf, r.ptr);
  }
  const auto result = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, result.ptr);
}

void append_escaped_label_value(std::string& out, std::string_view value) {
  // Routes are cleaned by the namer; this is the last line for every other label (pod names,
  // namespaces, a future source): one invalid byte would make Prometheus drop the scrape.
  std::string cleaned;
  if (!is_valid_utf8(value)) {
    append_valid_utf8(cleaned, value);
    value = cleaned;
  }
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void PrometheusWriter::family(std::string_view name, std::string_view type,
                              std::string_view help) {
  out_.append("# HELP ").append(name).push_back(' ');
  for (char c : help) {  // HELP escapes only backslash and newline
    if (c == '\\') out_ += "\\\\";
    else if (c == '\n') out_ += "\\n";
    else out_ += c;
  }
  out_.append("\n# TYPE ").append(name).push_back(' ');
  out_.append(type).push_back('\n');
}

void PrometheusWriter::labels(std::span<const Label> labels, std::string_view extra_name,
                              std::string_view extra_value) {
  if (labels.empty() && extra_name.empty()) return;
  out_.push_back('{');
  bool first = true;
  auto one = [&](std::string_view name, std::string_view value) {
    if (!first) out_.push_back(',');
    first = false;
    out_.append(name).append("=\"");
    append_escaped_label_value(out_, value);
    out_.push_back('"');
  };
  for (const auto& [name, value] : labels) one(name, value);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out_.push_back('}');
}

void PrometheusWriter::number(double value) {
  out_.push_back(' ');
  out_.append(format_double(value)).push_back('\n');
}

void PrometheusWriter::sample(std::string_view name, std::initializer_list<Label> labels_list,
                              double value) {
  sample(name, std::span<const Label>(labels_list.begin(), labels_list.size()), value);
}

void PrometheusWriter::sample(std::string_view name, std::span<const Label> label_list,
                              double value) {
  out_.append(name);
  labels(label_list);
  number(value);
}

void PrometheusWriter::histogram(std::string_view name, std::span<const Label> label_list,
                                 std::span<const double> bounds,
                                 std::span<const uint64_t> counts, double sum) {
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    const std::string le = i < bounds.size() ? format_double(bounds[i]) : "+Inf";
    out_.append(bucket);
    labels(label_list, "le", le);
    number(static_cast<double>(cumulative));
  }
  out_.append(name).append("_sum");
  labels(label_list);
  number(sum);
  out_.append(name).append("_count");
  labels(label_list);
  number(static_cast<double>(cumulative));
}

void PrometheusWriter::single(std::string_view name, std::string_view type,
                              std::string_view help, double value) {
  family(name, type, help);
  sample(name, std::span<const Label>(), value);
}

}  // namespace netprof
