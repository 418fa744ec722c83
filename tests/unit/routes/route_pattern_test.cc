#include "routes/route_pattern.h"

#include <gtest/gtest.h>

namespace netprof {
namespace {

RoutePattern parse_ok(std::string_view text) {
  std::string error;
  auto pattern = RoutePattern::parse(text, error);
  EXPECT_TRUE(pattern.has_value()) << error;
  return pattern ? *pattern : *RoutePattern::parse("/", error);
}

TEST(RoutePattern, ParametersMatchExactlyOneSegment) {
  const RoutePattern p = parse_ok("/users/{id}/orders/{order}");
  EXPECT_TRUE(p.matches("/users/42/orders/7"));
  EXPECT_TRUE(p.matches("/users/alice/orders/7/"));  // one trailing slash is ignored
  EXPECT_FALSE(p.matches("/users/42/orders"));
  EXPECT_FALSE(p.matches("/users/42/orders/7/items"));
  EXPECT_FALSE(p.matches("/customers/42/orders/7"));
}

TEST(RoutePattern, StarIsOneSegmentAndRestIsAnyTail) {
  EXPECT_TRUE(parse_ok("/a/*/c").matches("/a/b/c"));
  EXPECT_FALSE(parse_ok("/a/*/c").matches("/a/c"));
  const RoutePattern rest = parse_ok("/static/{file...}");
  EXPECT_TRUE(rest.matches("/static/css/site.css"));
  EXPECT_TRUE(rest.matches("/static"));
  EXPECT_FALSE(rest.matches("/assets/x"));
  EXPECT_TRUE(parse_ok("/**").matches("/anything/at/all"));
}

TEST(RoutePattern, RootMatchesOnlyRoot) {
  const RoutePattern root = parse_ok("/");
  EXPECT_TRUE(root.matches("/"));
  EXPECT_FALSE(root.matches("/x"));
}

TEST(RoutePattern, RejectsMalformedPatternsWithAReason) {
  std::string error;
  for (const char* bad : {"users/{id}", "", "/users/{id", "/users/{}", "/a/{rest...}/b",
                          "/a/x{id}", "/**/b"}) {
    error.clear();
    EXPECT_FALSE(RoutePattern::parse(bad, error).has_value()) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

}  // namespace
}  // namespace netprof
