// HTTP names, spelled once: methods (llhttp's numbers, which Exchange::method carries for
// HTTP/1 and HTTP/2 alike) and how an exchange can end, with its two spellings — words for
// people (the report's "state") and the OpenTelemetry error.type value (metrics, tap).
#pragma once

#include <cstdint>
#include <string_view>

namespace netprof {

enum class ExchangeOutcome : uint8_t {
  kCompleted,            // a full response was paired with the request
  kClosedBeforeResponse, // the connection closed (FIN) before the response was complete
  kResetBeforeResponse,  // the connection was reset before the response was complete
  kUpstreamFailed,       // the upstream could not be reached at all
  kParseError,           // the response could not be parsed (the connection went opaque), or
                         // its status was outside 100-599 (reported as status 0)
};

// "GET" for llhttp's number of GET; "" for a number llhttp has no method for.
std::string_view http_method_name(uint8_t llhttp_method);
// llhttp's number for "GET" (exact, case-sensitive, as HTTP/2's :method is); -1 if none.
int http_method_from_name(std::string_view name);

// "connection reset": the report's words. "" for kCompleted.
std::string_view outcome_text(ExchangeOutcome outcome);
// "connection_reset": OpenTelemetry's error.type. "" for kCompleted.
std::string_view outcome_error_type(ExchangeOutcome outcome);

}  // namespace netprof
