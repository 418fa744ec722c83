#include "cli/flag_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace netprof {
namespace {

std::string range_text(double min, double max) {
  std::ostringstream out;
  out << "[" << min << ", " << max << "]";
  return out.str();
}

// The whole text as a finite number, or nullopt ("nan", "inf", "1e999", "2s", "").
bool parse_finite(const std::string& text, double& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && errno != ERANGE && std::isfinite(value);
}

}  // namespace

CLI::Validator finite_in(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        double v = 0;
        if (!parse_finite(text, v)) return "'" + text + "' is not a finite number";
        if (v < min || v > max) return "'" + text + "' is out of range " + range_text(min, max);
        return {};
      },
      "NUMBER in " + range_text(min, max), "finite_in");
}

CLI::Validator zero_or_finite_in(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        double v = 0;
        if (!parse_finite(text, v)) return "'" + text + "' is not a finite number";
        if (v != 0 && (v < min || v > max))
          return "'" + text + "' must be 0 (off) or in " + range_text(min, max);
        return {};
      },
      "0 or NUMBER in " + range_text(min, max), "zero_or_finite_in");
}

CLI::Validator whole_in(uint64_t min, uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        const std::string range = "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
        if (text.empty() || text.size() > 19 ||
            text.find_first_not_of("0123456789") != std::string::npos)
          return "'" + text + "' is not a whole number in " + range;
        const uint64_t v = std::strtoull(text.c_str(), nullptr, 10);
        if (v < min || v > max) return "'" + text + "' is out of range " + range;
        return {};
      },
      "INTEGER in [" + std::to_string(min) + ", " + std::to_string(max) + "]", "whole_in");
}

}  // namespace netprof
