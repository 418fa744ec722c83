// Checks for numeric flags. CLI11's Range lets NaN through (every comparison with NaN is
// false) and its unsigned conversion accepts "-5" (wrapped) and "0x10"; these check the text
// itself. CLI11 names the flag in the message ("--connect-timeout: ...").
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

namespace netprof {

// A finite decimal number in [min, max].
CLI::Validator finite_in(double min, double max);
// 0 (meaning "off"), or a finite number in [min, max].
CLI::Validator zero_or_finite_in(double min, double max);
// A whole number written in decimal digits, in [min, max].
CLI::Validator whole_in(uint64_t min, uint64_t max);

}  // namespace netprof
