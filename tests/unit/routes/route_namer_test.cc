#include "routes/route_namer.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace netprof {
namespace {

std::string name(RouteNamer& namer, std::string_view target) {
  std::string out;
  namer.name(target, out);
  return out;
}

RouteNamerOptions with_patterns(std::initializer_list<const char*> texts) {
  RouteNamerOptions options;
  std::string error;
  for (const char* text : texts) options.patterns.push_back(*RoutePattern::parse(text, error));
  return options;
}

TEST(RouteNamer, DropsQueryAndFragmentUnlessAsked) {
  RouteNamer namer;
  EXPECT_EQ(name(namer, "/search?q=secret#top"), "/search");
  EXPECT_EQ(name(namer, "http://example.com/a/b?x=1"), "/a/b");
  EXPECT_EQ(name(namer, "http://example.com"), "/");
  EXPECT_EQ(name(namer, ""), "/");
  RouteNamerOptions keep;
  keep.keep_query = true;
  RouteNamer keeping(keep);
  EXPECT_EQ(name(keeping, "/users/42?q=1"), "/users/{id}?q=1");
}

TEST(RouteNamer, CollapsesIdSegmentsAndKeepsExtensions) {
  RouteNamer namer;
  EXPECT_EQ(name(namer, "/users/42/orders/123e4567-e89b-12d3-a456-426614174000"),
            "/users/{id}/orders/{id}");
  EXPECT_EQ(name(namer, "/img/9876.jpg"), "/img/{id}.jpg");
  EXPECT_EQ(name(namer, "/blob/507f1f77bcf86cd799439011/raw"), "/blob/{id}/raw");
  EXPECT_EQ(name(namer, "/api/v2/users"), "/api/v2/users");
  EXPECT_EQ(name(namer, "/a//b/"), "/a//b/");
  EXPECT_EQ(namer.counters().id_segments, 4u);
}

TEST(RouteNamer, RoutesAreAlwaysValidUtf8) {
  RouteNamer namer;
  EXPECT_EQ(name(namer, "/bad/\xff\xfe/caf\xc3\xa9/\x01"), "/bad/%FF%FE/caf\xc3\xa9/%01");
  EXPECT_EQ(name(namer, "\xff"), "%FF");  // not "/"-rooted: kept whole, still cleaned
  RouteNamerOptions keep;
  keep.keep_query = true;
  RouteNamer keeping(keep);
  EXPECT_EQ(name(keeping, "/a?q=\xc3"), "/a?q=%C3");
}

TEST(RouteNamer, IdCollapseCanBeTurnedOff) {
  RouteNamerOptions options;
  options.collapse_ids = false;
  RouteNamer namer(options);
  EXPECT_EQ(name(namer, "/users/42"), "/users/42");
  EXPECT_EQ(namer.counters().id_segments, 0u);
}

TEST(RouteNamer, UserPatternsWinInOrder) {
  RouteNamer namer(with_patterns({"/users/{name}/profile", "/users/**"}));
  EXPECT_EQ(name(namer, "/users/alice/profile"), "/users/{name}/profile");
  EXPECT_EQ(name(namer, "/users/alice/settings/x?y=1"), "/users/**");
  EXPECT_EQ(name(namer, "/orders/7"), "/orders/{id}");
  EXPECT_EQ(namer.counters().pattern_matches, 2u);
}

TEST(RouteNamer, PositionOverItsValueCapCollapsesForGood) {
  RouteNamerOptions options;
  options.max_segment_values = 3;
  RouteNamer namer(options);
  EXPECT_EQ(name(namer, "/users/alice"), "/users/alice");
  EXPECT_EQ(name(namer, "/users/bob/posts"), "/users/bob/posts");
  EXPECT_EQ(name(namer, "/users/carol"), "/users/carol");
  EXPECT_EQ(name(namer, "/users/alice"), "/users/alice");  // known values stay literal
  EXPECT_EQ(namer.counters().collapsed_positions, 0u);
  EXPECT_EQ(name(namer, "/users/dave/posts"), "/users/{*}/posts");  // the 4th value
  EXPECT_EQ(name(namer, "/users/alice"), "/users/{*}");  // collapsed for good
  EXPECT_EQ(name(namer, "/users/erin.png"), "/users/{*}.png");
  // Other positions are unaffected, and the root position holds just "users" and "about".
  EXPECT_EQ(name(namer, "/about"), "/about");
  const RouteNamerCounters c = namer.counters();
  EXPECT_EQ(c.collapsed_positions, 1u);
  EXPECT_EQ(c.capped_segments, 3u);
}

TEST(RouteNamer, DistinctRoutesStayBoundedUnderRandomPaths) {
  RouteNamerOptions options;
  options.max_segment_values = 10;
  RouteNamer namer(options);
  std::set<std::string> routes;
  for (int i = 0; i < 5000; ++i) {
    // Word-like values that the id heuristics keep, at two levels.
    const std::string a = "team" + std::string(1, static_cast<char>('a' + i % 26)) +
                          std::string(1, static_cast<char>('a' + (i / 26) % 26));
    const std::string b = "page" + std::string(1, static_cast<char>('a' + (i * 7) % 26));
    routes.insert(name(namer, "/" + a + "/" + b));
  }
  // At most 10 literals at the root plus {*}, and below each at most 10 literals plus {*}.
  EXPECT_LE(routes.size(), 11u * 11u);
  EXPECT_TRUE(routes.contains("/{*}/{*}"));
}

TEST(RouteNamer, RemembersTheLastRouteForItsTarget) {
  RouteNamer namer;
  name(namer, "/users/7?x=1");
  EXPECT_EQ(namer.last_route_for("/users/7?x=1"), "/users/{id}");
  EXPECT_EQ(namer.last_route_for("/users/8"), "");
}

// Relay workers share one namer: every worker sees the same position state, so a position
// collapses once for all of them and no more than the cap of literals is ever kept.
TEST(RouteNamer, ConcurrentWorkersShareOnePositionTable) {
  RouteNamerOptions options;
  options.max_segment_values = 50;
  options.concurrent = true;
  RouteNamer namer(options);
  std::mutex mu;
  std::set<std::string> routes;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      RouteNamer::Scratch scratch;
      std::string out;
      std::set<std::string> mine;
      for (int i = 0; i < 2000; ++i) {
        // Word-like (not ID-like) values, each worker in its own order.
        const int v = (i * (w + 1) * 7) % 400;
        const std::string word = std::string("page") + static_cast<char>('a' + v % 26) +
                                 static_cast<char>('a' + (v / 26) % 26);
        namer.name("/shop/" + word + ";jsessionid=x?q=1", out, scratch);
        mine.insert(out);
      }
      std::lock_guard lock(mu);
      routes.insert(mine.begin(), mine.end());
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_LE(routes.size(), 51u);  // at most the cap of literals plus {*}
  EXPECT_TRUE(routes.contains("/shop/{*}"));
  EXPECT_EQ(namer.counters().collapsed_positions, 1u);
  for (const std::string& r : routes) EXPECT_EQ(r.find(';'), std::string::npos) << r;
}

TEST(RouteNamer, NonOriginFormTargetsPassThrough) {
  RouteNamer namer;
  EXPECT_EQ(name(namer, "*"), "*");
  EXPECT_EQ(name(namer, "example.com:443"), "example.com:443");
}

}  // namespace
}  // namespace netprof
