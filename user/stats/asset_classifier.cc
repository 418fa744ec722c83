#include "stats/asset_classifier.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace netprof {
namespace {

// Longer extensions are not assets we know; also bounds the stack copy below.
constexpr size_t kMaxExtension = 16;

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string lowered_without_dot(std::string_view ext) {
  if (!ext.empty() && ext.front() == '.') ext.remove_prefix(1);
  std::string out(ext);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

}  // namespace

std::vector<std::string> AssetClassifier::default_extensions() {
  // Not json/xml: APIs answer with them, so they say nothing about being a static file.
  return {
      // images
      "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico", "bmp", "tif", "tiff", "apng",
      // fonts
      "woff", "woff2", "ttf", "otf", "eot",
      // styles, scripts, source maps, web assembly
      "css", "js", "mjs", "cjs", "map", "wasm",
      // media
      "mp4", "m4v", "webm", "mov", "mp3", "m4a", "ogg", "oga", "ogv", "wav", "flac", "aac",
      // archives and packages
      "zip", "gz", "tgz", "tar", "bz2", "xz", "zst", "7z", "rar", "jar", "whl", "deb", "rpm",
      // documents
      "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "csv",
      "txt", "md", "epub",
      // pages served as files
      "html", "htm",
  };
}

AssetClassifier::AssetClassifier() : AssetClassifier(default_extensions()) {}

AssetClassifier::AssetClassifier(const std::vector<std::string>& extensions) {
  for (const auto& ext : extensions) {
    std::string e = lowered_without_dot(ext);
    if (!e.empty() && e.size() <= kMaxExtension) extensions_.insert(std::move(e));
  }
}

bool AssetClassifier::is_asset(std::string_view route) const {
  route = route.substr(0, route.find_first_of("?#"));
  const size_t slash = route.rfind('/');
  const std::string_view segment = slash == std::string_view::npos ? route : route.substr(slash + 1);
  const size_t dot = segment.rfind('.');
  // No dot, a trailing dot, or a dot-file name ("/.well-known", "/.env") is no extension.
  if (dot == std::string_view::npos || dot == 0) return false;
  const std::string_view ext = segment.substr(dot + 1);
  if (ext.empty() || ext.size() > kMaxExtension) return false;
  std::array<char, kMaxExtension> buf{};
  std::transform(ext.begin(), ext.end(), buf.begin(), lower);
  // unordered_set<std::string> has no heterogeneous lookup here; a small string fits SSO,
  // and this runs once per new route, not per request.
  return extensions_.contains(std::string(buf.data(), ext.size()));
}

}  // namespace netprof
