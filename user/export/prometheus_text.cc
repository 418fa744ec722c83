#include "export/prometheus_text.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
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

void Exemplar::set(double v, int64_t ms, bool is_trace, std::string_view text) {
  value = v;
  unix_ms = ms;
  trace = is_trace;
  id_len = static_cast<uint8_t>(std::min(text.size(), kMaxId));
  std::copy_n(text.data(), id_len, id);  // (memcpy: UB for an empty view's null)
}

void PrometheusWriter::finish() {
  if (format_ == ExpositionFormat::kOpenMetrics) out_.append("# EOF\n");
}

void PrometheusWriter::family(std::string_view name, std::string_view type,
                              std::string_view help) {
  // OpenMetrics names a counter's family without the _total its samples carry.
  if (format_ == ExpositionFormat::kOpenMetrics && type == "counter" && name.ends_with("_total"))
    name.remove_suffix(6);
  out_.append("# HELP ").append(name).push_back(' ');
  for (char c : help) {  // HELP escapes backslash and newline (and in OpenMetrics the quote)
    if (c == '\\') out_ += "\\\\";
    else if (c == '\n') out_ += "\\n";
    else if (c == '"' && format_ == ExpositionFormat::kOpenMetrics) out_ += "\\\"";
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

void PrometheusWriter::exemplar(const Exemplar& e) {
  // " # {trace_id=\"...\"} 0.067 1700000000.123"; ids are [A-Za-z0-9._:-] (http/trace_id.h)
  // or digits and '-', so they need no escaping, but escape anyway: it is a label value.
  out_.append(" # {").append(e.trace ? "trace_id" : "request_id").append("=\"");
  append_escaped_label_value(out_, e.id_view());
  out_.append("\"} ").append(format_double(e.value));
  char ts[32];
  const int n =
      std::snprintf(ts, sizeof ts, " %lld.%03lld", static_cast<long long>(e.unix_ms / 1000),
                    static_cast<long long>(e.unix_ms % 1000));
  out_.append(ts, static_cast<size_t>(n));
}

void PrometheusWriter::histogram(std::string_view name, std::span<const Label> label_list,
                                 std::span<const double> bounds, std::span<const uint64_t> counts,
                                 double sum, std::span<const Exemplar> exemplars) {
  const std::string bucket = std::string(name) + "_bucket";
  const bool with_exemplars = format_ == ExpositionFormat::kOpenMetrics;
  uint64_t cumulative = 0;
  size_t next_exemplar = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    const std::string le = i < bounds.size() ? format_double(bounds[i]) : "+Inf";
    out_.append(bucket);
    labels(label_list, "le", le);
    while (next_exemplar < exemplars.size() && exemplars[next_exemplar].bucket < i) ++next_exemplar;
    const Exemplar* x = next_exemplar < exemplars.size() && exemplars[next_exemplar].bucket == i
                            ? &exemplars[next_exemplar]
                            : nullptr;
    if (with_exemplars && x != nullptr && x->unix_ms != 0 && x->id_len != 0) {
      out_.push_back(' ');
      out_.append(format_double(static_cast<double>(cumulative)));
      exemplar(*x);
      out_.push_back('\n');
    } else {
      number(static_cast<double>(cumulative));
    }
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
