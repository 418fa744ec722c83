#include "stats/asset_classifier.h"

#include <gtest/gtest.h>

#include <string_view>

namespace netprof {
namespace {

struct Case {
  std::string_view route;
  bool asset;
};

TEST(AssetClassifier, DefaultTable) {
  const AssetClassifier classifier;
  const Case cases[] = {
      {"/home", false},
      {"/home.pdf", true},
      {"/", false},
      {"", false},
      {"/a.b/c", false},           // a dot in a directory is not an extension
      {"/v1.2/users", false},
      {"/api/v1.2", false},        // "2" is no known extension
      {"/static/app.js", true},
      {"/static/app.min.js", true},
      {"/static/app.mjs", true},
      {"/static/app.js.map", true},
      {"/s/site.css", true},
      {"/img/logo.PNG", true},     // case-insensitive
      {"/img/Photo.JpEg", true},
      {"/as07-3-1531_21921290751_o.jpg", true},
      {"/favicon.ico", true},
      {"/fonts/x.woff2", true},
      {"/fonts/x.ttf", true},
      {"/v/clip.mp4", true},
      {"/dl/release.tar.gz", true},
      {"/dl/release.tgz", true},
      {"/dl/a.7z", true},
      {"/doc/report.docx", true},
      {"/doc/data.csv", true},
      {"/robots.txt", true},
      {"/m.wasm", true},
      {"/img/logo.svg?v=3", true},   // query ignored
      {"/img/logo.svg#frag", true},  // fragment ignored
      {"/search?file=a.pdf", false}, // an extension in the query is not the path's
      {"/api/users.json", false},    // json is what APIs answer with
      {"/api/feed.xml", false},
      {"/.well-known", false},       // a dot-file has no extension
      {"/.env", false},
      {"/trailing.", false},
      {"/dir/", false},
      {"/x.pdfx", false},
      {"/x.verylongextensionname", false},
      {"relative.png", true},
  };
  for (const auto& c : cases) EXPECT_EQ(classifier.is_asset(c.route), c.asset) << c.route;
}

TEST(AssetClassifier, CustomListReplacesTheDefaults) {
  const AssetClassifier classifier({".JSON", "Bin", ""});
  EXPECT_TRUE(classifier.is_asset("/a/b.json"));
  EXPECT_TRUE(classifier.is_asset("/fw.BIN"));
  EXPECT_FALSE(classifier.is_asset("/a.png"));
  EXPECT_FALSE(classifier.is_asset("/a."));
}

TEST(AssetClassifier, DefaultsAreLowerCaseWithoutDotsAndExcludeJson) {
  for (const auto& ext : AssetClassifier::default_extensions()) {
    EXPECT_FALSE(ext.empty());
    EXPECT_EQ(ext.find('.'), std::string::npos) << ext;
    for (char c : ext) EXPECT_FALSE(c >= 'A' && c <= 'Z') << ext;
    EXPECT_NE(ext, "json");
  }
}

}  // namespace
}  // namespace netprof
