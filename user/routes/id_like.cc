#include "routes/id_like.h"

namespace netprof {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_token_char(char c) {
  return is_digit(c) || is_letter(c) || c == '-' || c == '_' || c == '=' || c == '+' || c == '~';
}

bool is_number(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_position ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

constexpr size_t kMinHexId = 8;
constexpr size_t kMinToken = 16;

bool is_hex_id(std::string_view s) {
  if (s.size() < kMinHexId) return false;
  bool digit = false;
  for (char c : s) {
    if (!is_hex(c)) return false;
    digit |= is_digit(c);
  }
  return digit;  // a word made of a-f letters ("deadbeef", "accede") is not an id
}

bool is_token(std::string_view s) {
  if (s.size() < kMinToken) return false;
  size_t digits = 0, letters = 0;
  for (char c : s) {
    if (!is_token_char(c)) return false;
    digits += is_digit(c);
    letters += is_letter(c);
  }
  return digits >= 2 && letters >= 1;
}

}  // namespace

bool is_id_like(std::string_view segment) {
  return is_number(segment) || is_uuid(segment) || is_hex_id(segment) || is_token(segment);
}

void split_extension(std::string_view segment, std::string_view& stem, std::string_view& ext) {
  constexpr size_t kMaxExt = 5;
  stem = segment;
  ext = {};
  const auto dot = segment.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return;
  const size_t ext_len = segment.size() - dot - 1;
  if (ext_len == 0 || ext_len > kMaxExt) return;
  for (char c : segment.substr(dot + 1)) {
    if (!is_digit(c) && !is_letter(c)) return;
  }
  stem = segment.substr(0, dot);
  ext = segment.substr(dot);
}

}  // namespace netprof
