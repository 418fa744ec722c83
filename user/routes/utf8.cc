#include "routes/utf8.h"

#include <cstdint>

namespace netprof {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629, Table 3-7 of the
// Unicode standard), or 0 when the first byte does not start one.
size_t sequence_length(std::string_view s, bool controls_ok) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t c = b(0);
  if (c < 0x80) return (!controls_ok && (c < 0x20 || c == 0x7f)) ? 0 : 1;
  auto cont = [&](size_t i, uint8_t lo = 0x80, uint8_t hi = 0xbf) {
    return i < s.size() && b(i) >= lo && b(i) <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;                // no overlong
  if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;          // no surrogates
  if (c >= 0xe1 && c <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;    // no overlong
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;  // <= U+10FFFF
  return 0;
}

bool scan(std::string_view text, bool controls_ok) {
  for (size_t i = 0; i < text.size();) {
    // ASCII fast path: the common route is plain printable ASCII.
    const auto c = static_cast<uint8_t>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      ++i;
      continue;
    }
    const size_t n = sequence_length(text.substr(i), controls_ok);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append_encoded(std::string& out, std::string_view text, bool controls_ok) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < text.size();) {
    const size_t n = sequence_length(text.substr(i), controls_ok);
    if (n == 0) {
      const auto c = static_cast<uint8_t>(text[i]);
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
}

}  // namespace

bool is_clean_utf8(std::string_view text) { return scan(text, false); }
bool is_valid_utf8(std::string_view text) { return scan(text, true); }
void append_clean_utf8(std::string& out, std::string_view text) { append_encoded(out, text, false); }
void append_valid_utf8(std::string& out, std::string_view text) { append_encoded(out, text, true); }

void make_clean_utf8(std::string& text, std::string& scratch) {
  if (is_clean_utf8(text)) return;
  scratch.clear();
  append_clean_utf8(scratch, text);
  text.swap(scratch);
}

}  // namespace netprof
