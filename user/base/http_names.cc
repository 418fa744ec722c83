#include "base/http_names.h"

#include <llhttp.h>

namespace netprof {

std::string_view http_method_name(uint8_t llhttp_method) {
  switch (llhttp_method) {
#define NETPROF_METHOD_CASE(num, name, string) \
  case num:                                    \
    return #string;
    HTTP_ALL_METHOD_MAP(NETPROF_METHOD_CASE)
#undef NETPROF_METHOD_CASE
    default:
      return {};
  }
}

int http_method_from_name(std::string_view name) {
#define NETPROF_METHOD(num, name_, string) \
  if (name == #string) return num;
  HTTP_ALL_METHOD_MAP(NETPROF_METHOD)
#undef NETPROF_METHOD
  return -1;
}

namespace {

struct OutcomeNames {
  std::string_view text, error_type;
};

OutcomeNames names_of(ExchangeOutcome outcome) {
  switch (outcome) {
    case ExchangeOutcome::kCompleted: return {};
    case ExchangeOutcome::kClosedBeforeResponse:
      return {"connection closed before response", "connection_closed"};
    case ExchangeOutcome::kResetBeforeResponse: return {"connection reset", "connection_reset"};
    case ExchangeOutcome::kUpstreamFailed: return {"upstream unreachable", "upstream_unreachable"};
    case ExchangeOutcome::kParseError: return {"unparseable response", "response_parse_error"};
  }
  return {"unknown failure", "unknown"};
}

}  // namespace

std::string_view outcome_text(ExchangeOutcome outcome) { return names_of(outcome).text; }
std::string_view outcome_error_type(ExchangeOutcome outcome) {
  return names_of(outcome).error_type;
}

}  // namespace netprof
