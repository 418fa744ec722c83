#include "routes/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace netprof {
namespace {

std::string clean(std::string_view in) {
  std::string out;
  append_clean_utf8(out, in);
  return out;
}

TEST(Utf8, KeepsWellFormedText) {
  for (std::string_view ok : {"/plain", "/caf\xc3\xa9", "/\xe2\x82\xac", "/\xf0\x9f\x98\x80",
                              "/\xf4\x8f\xbf\xbf", ""}) {
    EXPECT_TRUE(is_clean_utf8(ok)) << ok;
    EXPECT_EQ(clean(ok), ok);
  }
}

TEST(Utf8, EncodesEveryByteThatIsNotPartOfAWellFormedSequence) {
  const struct {
    std::string_view in, out;
  } cases[] = {
      {"/\xff\xfe", "/%FF%FE"},                        // never valid
      {"/\xc0\xaf", "/%C0%AF"},                        // overlong '/'
      {"/\xe0\x80\xaf", "/%E0%80%AF"},                 // overlong, 3 bytes
      {"/\xed\xa0\x80", "/%ED%A0%80"},                 // a UTF-16 surrogate
      {"/\xf4\x90\x80\x80", "/%F4%90%80%80"},          // above U+10FFFF
      {"/\xc3", "/%C3"},                               // truncated at the end
      {"/\xc3/", "/%C3/"},                             // truncated before ASCII
      {"/\x80\xc3\xa9", "/%80\xc3\xa9"},               // a stray continuation byte
      {std::string_view("/a\0b", 4), "/a%00b"},        // NUL
      {"/\x01\x1b[2J\x7f", "/%01%1B[2J%7F"},           // controls (a terminal escape)
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(is_clean_utf8(c.in)) << c.out;
    EXPECT_EQ(clean(c.in), c.out);
    EXPECT_TRUE(is_clean_utf8(clean(c.in)));
  }
}

TEST(Utf8, ValidVariantLeavesControlsToTheWriter) {
  EXPECT_TRUE(is_valid_utf8("a\nb"));
  EXPECT_FALSE(is_valid_utf8("a\xff"));
  std::string out;
  append_valid_utf8(out, "a\n\xff");
  EXPECT_EQ(out, "a\n%FF");
}

TEST(Utf8, MakeCleanReusesTheScratch) {
  std::string text = "/\xff", scratch;
  make_clean_utf8(text, scratch);
  EXPECT_EQ(text, "/%FF");
  text = "/fine";
  make_clean_utf8(text, scratch);
  EXPECT_EQ(text, "/fine");
}

}  // namespace
}  // namespace netprof
