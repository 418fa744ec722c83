#include "routes/id_like.h"

#include <gtest/gtest.h>

namespace netprof {
namespace {

TEST(IdLike, CollapsesCommonIdShapes) {
  for (const char* id : {"0", "42", "1234567890123", "123e4567-e89b-12d3-a456-426614174000",
                         "5f3a9c8e", "507f1f77bcf86cd799439011",  // Mongo ObjectId
                         "da39a3ee5e6b4b0d3255bfef95601890afd80709",  // SHA-1
                         "dGhpc2lzYXRva2Vu1234", "eyJhbGciOiJIUzI1NiJ9_abc-12"}) {
    EXPECT_TRUE(is_id_like(id)) << id;
  }
}

TEST(IdLike, KeepsWordsVersionsAndShortMixes) {
  for (const char* word : {"", "users", "v2", "2fa", "api", "deadbeef", "accede", "orders",
                           "my-blog-post-title", "getUserProfileById", "iso8601"}) {
    EXPECT_FALSE(is_id_like(word)) << word;
  }
}

TEST(IdLike, SplitsShortAlphanumericExtensionsOnly) {
  std::string_view stem, ext;
  split_extension("12345.jpg", stem, ext);
  EXPECT_EQ(stem, "12345");
  EXPECT_EQ(ext, ".jpg");
  split_extension("archive.tar.gz", stem, ext);
  EXPECT_EQ(stem, "archive.tar");
  EXPECT_EQ(ext, ".gz");
  split_extension("v1.verylongext", stem, ext);
  EXPECT_EQ(stem, "v1.verylongext");
  EXPECT_EQ(ext, "");
  split_extension(".hidden", stem, ext);
  EXPECT_EQ(stem, ".hidden");
  EXPECT_EQ(ext, "");
}

}  // namespace
}  // namespace netprof
