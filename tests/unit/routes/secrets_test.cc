#include "routes/secrets.h"

#include <gtest/gtest.h>

#include "routes/route_namer.h"

namespace netprof {
namespace {

constexpr const char* kJwt =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

TEST(Secrets, RecognisesTheUsualShapes) {
  for (const char* secret : {kJwt, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  // unsigned JWT
                             "alice@example.com", "bob.smith+tag@mail.example.co.uk",
                             "alice%40example.com", "AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A",
                             "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
                             "xoxb-1234567890-abcdefghijklmnop", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                             "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
                             "Sg1Rz3mYQvN0f8XbL2kWtA", "rI74YPzxNTOLbrJ8cE6c"}) {
    EXPECT_TRUE(is_secret_like(secret)) << secret;
  }
}

TEST(Secrets, LeavesWordsIdsAndCamelCaseAlone) {
  for (const char* word :
       {"users", "orders", "v2", "getUserProfileById2024Version", "MyVeryLongCamelCaseRouteName",
        "my-blog-post-title-about-things", "HTTPServerRequestHandlerV2", "iPhone15ProMaxReviewPage",
        "123e4567-e89b-12d3-a456-426614174000", "507f1f77bcf86cd799439011", "12345", "a@b",
        "logo@2x.png", "index.html", "eyJ", "AKIAshort"}) {
    EXPECT_FALSE(is_secret_like(word)) << word;
  }
}

TEST(Secrets, SecretParameterNamesIgnoreCase) {
  EXPECT_TRUE(is_secret_parameter_name("password"));
  EXPECT_TRUE(is_secret_parameter_name("Access_Token"));
  EXPECT_TRUE(is_secret_parameter_name("API_KEY"));
  EXPECT_FALSE(is_secret_parameter_name("page"));
  EXPECT_FALSE(is_secret_parameter_name("q"));
}

TEST(Secrets, UserinfoIsDroppedFromAbsoluteFormOnly) {
  EXPECT_EQ(without_userinfo("http://user:pw@host:8080/a?b=c@d"), "http://host:8080/a?b=c@d");
  EXPECT_EQ(without_userinfo("http://user@host"), "http://host");
  EXPECT_EQ(without_userinfo("http://host/a@b"), "http://host/a@b");
  EXPECT_EQ(without_userinfo("/a@b/c"), "/a@b/c");
  EXPECT_EQ(without_userinfo("http://a:b@c@host/x"), "http://host/x");
}

std::string name(RouteNamer& namer, std::string_view target) {
  std::string out;
  namer.name(target, out);
  return out;
}

TEST(RouteNamerRedaction, SecretsBecomeRedactedByDefault) {
  RouteNamer namer;
  EXPECT_EQ(name(namer, std::string("/api/verify/") + kJwt), "/api/verify/{redacted}");
  EXPECT_EQ(name(namer, "/users/alice@example.com/profile"), "/users/{redacted}/profile");
  EXPECT_EQ(name(namer, "/users/alice%40example.com"), "/users/{redacted}");
  EXPECT_EQ(name(namer, "/keys/AKIAIOSFODNN7EXAMPLE/rotate"), "/keys/{redacted}/rotate");
  EXPECT_EQ(name(namer, "/hook/ghp_16C7e42F292c6912E7710c838347Ae178B4a"), "/hook/{redacted}");
  EXPECT_EQ(name(namer, "/cart;jsessionid=0123456789ABCDEF/items;v=1"), "/cart/items");
  EXPECT_EQ(name(namer, "/a;b"), "/a");
  EXPECT_EQ(name(namer, ";rXAMPLE"), "/");  // found by fuzz/route_namer_fuzz: was ""
  // Ids stay ids, words stay words.
  EXPECT_EQ(name(namer, "/orders/42/items/507f1f77bcf86cd799439011"), "/orders/{id}/items/{id}");
  EXPECT_EQ(name(namer, "/api/getUserProfile"), "/api/getUserProfile");
  // Absolute-form: the authority (and any userinfo in it) never reaches the route.
  EXPECT_EQ(name(namer, "http://user:hunter2@example.com/a"), "/a");
  EXPECT_EQ(namer.counters().redacted_segments, 5u);
}

TEST(RouteNamerRedaction, AlsoWithIdCollapseOffAndInAKeptQuery) {
  RouteNamerOptions options;
  options.collapse_ids = false;
  options.keep_query = true;
  RouteNamer namer(options);
  EXPECT_EQ(name(namer, "/u/bob@example.org?page=2&token=abc&password=x&next=alice@example.com"),
            "/u/{redacted}?page=2&token={redacted}&password={redacted}&next={redacted}");
  EXPECT_EQ(name(namer, "/u/42?a&b="), "/u/42?a&b=");
}

TEST(RouteNamerRedaction, CanBeTurnedOff) {
  RouteNamerOptions options;
  options.redact = false;
  options.collapse_ids = false;
  RouteNamer namer(options);
  EXPECT_EQ(name(namer, "/users/alice@example.com;v=1"), "/users/alice@example.com;v=1");
  EXPECT_EQ(namer.counters().redacted_segments, 0u);
}

}  // namespace
}  // namespace netprof
