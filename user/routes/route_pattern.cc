#include "routes/route_pattern.h"

namespace netprof {
namespace {

// Calls fn(segment) for each '/'-separated segment after the leading '/'; stops early when
// fn returns false. "/" has no segments; "/a//b" has "a", "", "b".
template <typename Fn>
bool for_each_segment(std::string_view path, Fn&& fn) {
  if (path.empty() || path == "/") return true;
  size_t start = path.front() == '/' ? 1 : 0;
  while (true) {
    const auto slash = path.find('/', start);
    const std::string_view segment =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!fn(segment)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

}  // namespace

std::optional<RoutePattern> RoutePattern::parse(std::string_view text, std::string& error) {
  if (text.empty() || text.front() != '/') {
    error = "route pattern '" + std::string(text) + "' must start with '/'";
    return std::nullopt;
  }
  RoutePattern pattern;
  pattern.text_ = std::string(text);
  bool ok = true;
  for_each_segment(text, [&](std::string_view segment) {
    if (!pattern.segments_.empty() && pattern.segments_.back().kind == Kind::kRest) {
      error = "route pattern '" + std::string(text) + "': '{name...}' or '**' must be last";
      return ok = false;
    }
    if (segment == "**") {
      pattern.segments_.push_back({Kind::kRest, {}});
    } else if (segment == "*") {
      pattern.segments_.push_back({Kind::kAny, {}});
    } else if (!segment.empty() && segment.front() == '{') {
      if (segment.back() != '}' || segment.size() < 3) {
        error = "route pattern '" + std::string(text) + "': segment '" + std::string(segment) +
                "' needs the form {name}";
        return ok = false;
      }
      const bool rest = segment.size() > 5 && segment.substr(segment.size() - 4) == "...}";
      pattern.segments_.push_back({rest ? Kind::kRest : Kind::kAny, {}});
    } else if (segment.find_first_of("{}") != std::string_view::npos) {
      error = "route pattern '" + std::string(text) + "': braces must enclose a whole segment";
      return ok = false;
    } else {
      pattern.segments_.push_back({Kind::kLiteral, std::string(segment)});
    }
    return true;
  });
  if (!ok) return std::nullopt;
  return pattern;
}

bool RoutePattern::matches(std::string_view path) const {
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t i = 0;
  bool rest_matched = false;
  const bool all = for_each_segment(path, [&](std::string_view segment) {
    if (i >= segments_.size()) return false;
    const Segment& want = segments_[i];
    if (want.kind == Kind::kRest) {
      rest_matched = true;
      return false;  // everything from here on belongs to the rest segment
    }
    if (want.kind == Kind::kLiteral && want.literal != segment) return false;
    ++i;
    return true;
  });
  if (rest_matched) return true;
  if (!all) return false;
  // All path segments consumed: the pattern must be used up too (a trailing rest matches none).
  return i == segments_.size() || (i + 1 == segments_.size() && segments_[i].kind == Kind::kRest);
}

}  // namespace netprof
