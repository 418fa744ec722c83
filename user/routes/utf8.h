// Routes, label values and tap lines must be valid UTF-8: Prometheus rejects a whole scrape
// over one invalid label value, and JSON consumers choke on it. Request targets are bytes from
// strangers, so every name derived from them goes through here once (in the namer), and the
// writers use it again as a last line of defence.
#pragma once

#include <string>
#include <string_view>

namespace netprof {

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF) and
// holds no C0 control character or DEL.
bool is_clean_utf8(std::string_view text);

// Appends `text` with every byte that is not part of a well-formed UTF-8 sequence, and every
// C0 control and DEL, written as %XX (so "/\xff" becomes "/%FF": readable, reversible and
// never an invalid label). Clean text is appended unchanged.
void append_clean_utf8(std::string& out, std::string_view text);

// The same without the control-character rule, for writers that escape controls themselves
// (Prometheus label values escape "\n").
bool is_valid_utf8(std::string_view text);
void append_valid_utf8(std::string& out, std::string_view text);

// Makes `text` clean in place; `scratch` is reused so a warm caller allocates nothing.
void make_clean_utf8(std::string& text, std::string& scratch);

}  // namespace netprof
