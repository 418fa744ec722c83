// Trace ids read passively from a request's head, so that one slow request in netprof can be
// found in the tracing system (or the logs) of the service it went to. netprof never adds or
// changes a header: it only reads what the client already sent.
//
// Which header wins when several are present: a W3C `traceparent` (its trace-id field), else
// `X-B3-TraceId` (Zipkin), else `X-Request-Id` (nginx $request_id, Heroku, Rails...). Values
// are validated, never repaired: a malformed one is ignored.
//
// Why keeping them is safe by default (header values are otherwise never stored): traceparent
// and B3 ids are fixed-format random hex. X-Request-Id is free text a client may set, so it is
// kept only when it is short (kMaxTraceIdBytes) and made of [A-Za-z0-9._:-] alone: no '@', no
// spaces, no '=', '/' or '+' (no e-mail address, no base64 credential, no JWT, which is longer
// anyway). --no-trace-ids turns the reading off altogether.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace netprof {

inline constexpr size_t kMaxTraceIdBytes = 64;

// Best first: a lower value beats a higher one.
enum class TraceSource : uint8_t { kNone = 0, kTraceparent = 1, kB3 = 2, kRequestId = 3 };

// The source a header name (any letter case) stands for; kNone for any other header.
TraceSource trace_source_of(std::string_view header_name);

// The id a header value carries, or an empty view when the value is not acceptable. Points
// into `value`. For traceparent, the 32 hex digits of its trace-id field.
std::string_view trace_id_of(TraceSource source, std::string_view value);

// A request's trace id as it is being read: fixed storage, no allocation.
class TraceIdSlot {
 public:
  // Keeps the id of `value` if it is valid and `source` beats what is kept.
  void offer(TraceSource source, std::string_view value);
  void clear() {
    len_ = 0;
    source_ = TraceSource::kNone;
  }
  std::string_view view() const { return {bytes_, len_}; }
  TraceSource source() const { return source_; }

 private:
  char bytes_[kMaxTraceIdBytes] = {};
  uint8_t len_ = 0;
  TraceSource source_ = TraceSource::kNone;
};

// Follows one HTTP/1 header at a time through llhttp's split callbacks (name pieces, name
// complete, value pieces, value complete) and offers the wanted ones to a slot. Names longer
// than any wanted one and values longer than the longest acceptable one are not copied.
class TraceHeaderReader {
 public:
  void name_piece(std::string_view piece);
  void name_done();
  void value_piece(std::string_view piece);
  void value_done(TraceIdSlot& slot);
  void reset() {
    name_len_ = value_len_ = 0;
    name_overflow_ = value_overflow_ = text_past_kept_ = false;
    source_ = TraceSource::kNone;
  }

 private:
  // traceparent: 55 characters for version 00; later versions may append fields, which are
  // not needed (the trace-id comes first), so only this much of a value is kept.
  static constexpr size_t kMaxValue = 72;
  static constexpr size_t kMaxName = 12;  // "x-b3-traceid", "x-request-id"
  char name_[kMaxName] = {};
  char value_[kMaxValue] = {};
  uint8_t name_len_ = 0, value_len_ = 0;
  bool name_overflow_ = false, value_overflow_ = false;
  bool text_past_kept_ = false;  // a byte other than SP/HTAB came after what was kept
  TraceSource source_ = TraceSource::kNone;
};

}  // namespace netprof
