// Decides whether a route names a static asset (the origin's isFile): its last path segment
// ends in a known extension. The extension list is configurable.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace netprof {

class AssetClassifier {
 public:
  AssetClassifier();  // the default list: images, fonts, styles, scripts, maps, media, archives, documents
  explicit AssetClassifier(const std::vector<std::string>& extensions);  // without dots, any case

  bool is_asset(std::string_view route) const;  // query/fragment ignored, case-insensitive
  static std::vector<std::string> default_extensions();

 private:
  std::unordered_set<std::string> extensions_;  // lower case, no dot
};

}  // namespace netprof
