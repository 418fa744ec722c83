// A user route template such as "/users/{id}/orders/{order}": literal segments must match
// exactly, "{name}" or "*" matches any one segment, and a last segment "{name...}" or "**"
// matches the rest of the path (zero or more segments). A matching path is named by the
// template text itself, so "--route /users/{id}" turns "/users/42" into "/users/{id}".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netprof {

class RoutePattern {
 public:
  // Returns nullopt and sets `error` for a pattern that is not "/"-rooted, has an unclosed
  // brace, an empty parameter name, or a rest segment that is not last.
  static std::optional<RoutePattern> parse(std::string_view text, std::string& error);

  // `path` without query or fragment. One trailing slash is ignored ("/a/" matches "/a").
  bool matches(std::string_view path) const;
  const std::string& text() const { return text_; }

 private:
  enum class Kind { kLiteral, kAny, kRest };
  struct Segment {
    Kind kind;
    std::string literal;
  };
  std::string text_;
  std::vector<Segment> segments_;
};

}  // namespace netprof
