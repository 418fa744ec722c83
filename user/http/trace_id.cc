#include "http/trace_id.h"

#include <algorithm>
#include <cstring>

namespace netprof {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view lower_b) {
  if (a.size() != lower_b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower_b[i]) return false;
  return true;
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool is_hex(char c) { return is_lower_hex(lower(c)); }

bool all_of(std::string_view s, bool (*pred)(char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), pred);
}
bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

// W3C Trace Context: version "-" trace-id "-" parent-id "-" flags, lower-case hex, 2-32-16-2.
// Version ff is invalid; an all-zero trace-id or parent-id is invalid; a later version may
// append "-" fields after the flags.
std::string_view from_traceparent(std::string_view v) {
  constexpr size_t kLength = 55;
  if (v.size() < kLength || v[2] != '-' || v[35] != '-' || v[52] != '-') return {};
  const std::string_view version = v.substr(0, 2), trace = v.substr(3, 32),
                         parent = v.substr(36, 16), flags = v.substr(53, 2);
  if (!all_of(version, is_lower_hex) || version == "ff") return {};
  if (v.size() > kLength && (version == "00" || v[kLength] != '-')) return {};
  if (!all_of(trace, is_lower_hex) || !all_of(parent, is_lower_hex) || !all_of(flags, is_lower_hex))
    return {};
  if (all_zero(trace) || all_zero(parent)) return {};
  return trace;
}

// B3: 16 or 32 hex digits, not all zero.
std::string_view from_b3(std::string_view v) {
  if ((v.size() != 16 && v.size() != 32) || !all_of(v, is_hex) || all_zero(v)) return {};
  return v;
}

bool is_request_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == ':';
}

// Free text from the client: short and from a small alphabet, else not kept (see the header).
std::string_view from_request_id(std::string_view v) {
  if (v.size() > kMaxTraceIdBytes || !all_of(v, is_request_id_char)) return {};
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

TraceSource trace_source_of(std::string_view name) {
  if (name.size() == 11 && iequals(name, "traceparent")) return TraceSource::kTraceparent;
  if (name.size() == 12) {
    if (iequals(name, "x-b3-traceid")) return TraceSource::kB3;
    if (iequals(name, "x-request-id")) return TraceSource::kRequestId;
  }
  return TraceSource::kNone;
}

std::string_view trace_id_of(TraceSource source, std::string_view value) {
  value = trim(value);
  switch (source) {
    case TraceSource::kTraceparent:
      return from_traceparent(value);
    case TraceSource::kB3:
      return from_b3(value);
    case TraceSource::kRequestId:
      return from_request_id(value);
    case TraceSource::kNone:
      break;
  }
  return {};
}

void TraceIdSlot::offer(TraceSource source, std::string_view value) {
  if (source == TraceSource::kNone) return;
  if (source_ != TraceSource::kNone && source_ <= source) return;  // keeps the first of a kind
  const std::string_view id = trace_id_of(source, value);
  if (id.empty()) return;
  len_ = static_cast<uint8_t>(std::min(id.size(), kMaxTraceIdBytes));
  std::memcpy(bytes_, id.data(), len_);
  source_ = source;
}

void TraceHeaderReader::name_piece(std::string_view piece) {
  if (name_overflow_ || name_len_ + piece.size() > kMaxName) {
    name_overflow_ = true;
    return;
  }
  if (piece.empty()) return;  // an empty piece may have no data at all (memcpy from null)
  std::memcpy(name_ + name_len_, piece.data(), piece.size());
  name_len_ = static_cast<uint8_t>(name_len_ + piece.size());
}

void TraceHeaderReader::name_done() {
  source_ = name_overflow_ ? TraceSource::kNone : trace_source_of({name_, name_len_});
  name_len_ = 0;
  name_overflow_ = false;
  value_len_ = 0;
  value_overflow_ = text_past_kept_ = false;
}

void TraceHeaderReader::value_piece(std::string_view piece) {
  if (source_ == TraceSource::kNone) return;
  const size_t room = kMaxValue - value_len_;
  if (piece.size() > room) value_overflow_ = true;
  const size_t take = std::min(piece.size(), room);
  for (char c : piece.substr(take)) text_past_kept_ |= c != ' ' && c != '\t';
  if (take == 0) return;
  std::memcpy(value_ + value_len_, piece.data(), take);
  value_len_ = static_cast<uint8_t>(value_len_ + take);
}

void TraceHeaderReader::value_done(TraceIdSlot& slot) {
  // A traceparent of a later version may be longer than what is kept: its trace-id is in the
  // kept prefix. Any other value that did not fit is too long to be accepted.
  // Trailing blanks are trimmed before validation: in a cut value they would hide what came
  // after them ("<a valid version 00 value>   garbage" is not valid; a field never holds blanks).
  const bool cut_at_blank = text_past_kept_ && value_len_ != 0 &&
                            (value_[value_len_ - 1] == ' ' || value_[value_len_ - 1] == '\t');
  if (source_ != TraceSource::kNone && !cut_at_blank &&
      (!value_overflow_ || source_ == TraceSource::kTraceparent)) {
    slot.offer(source_, {value_, value_len_});
  }
  source_ = TraceSource::kNone;
  value_len_ = 0;
  value_overflow_ = text_past_kept_ = false;
}

}  // namespace netprof
