#include "routes/route_namer.h"

#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "routes/id_like.h"
#include "routes/secrets.h"
#include "routes/utf8.h"

namespace netprof {
namespace {

// Heterogeneous lookup: probing with a string_view allocates nothing.
struct ViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Position {
  bool collapsed = false;
  std::unordered_set<std::string, ViewHash, std::equal_to<>> values;
};

constexpr std::string_view kIdPlaceholder = "{id}";
constexpr std::string_view kCappedPlaceholder = "{*}";
constexpr std::string_view kRedactedPlaceholder = "{redacted}";

void bump(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

// Keyed by the templated prefix before the segment ("" for the first segment).
struct RouteNamer::Positions {
  std::unordered_map<std::string, Position, ViewHash, std::equal_to<>> by_prefix;
};

RouteNamer::RouteNamer(RouteNamerOptions options)
    : options_(std::move(options)), positions_(std::make_unique<Positions>()) {}

RouteNamer::~RouteNamer() = default;

void RouteNamer::name(std::string_view target, std::string& out) {
  last_target_.assign(target);
  name(target, out, scratch_);
  last_route_.assign(out);
}

void RouteNamer::name(std::string_view target, std::string& out, Scratch& scratch) {
  // Absolute-form targets (proxies, "GET http://host/path") are reduced to their path.
  if (const auto scheme = target.find("://");
      scheme != std::string_view::npos && !target.empty() && target.front() != '/') {
    const auto path = target.find('/', scheme + 3);
    target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
  }
  // The fragment never reaches servers in practice; drop it if a client sent one anyway.
  if (const auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  std::string_view query;
  if (const auto q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q);
    target = target.substr(0, q);
  }
  if (target.empty()) target = "/";
  // Path parameters ("/cart;jsessionid=AB12/items") carry session ids: drop each from its ';'
  // to the end of its segment, before patterns see the path.
  if (options_.redact && target.find(';') != std::string_view::npos) {
    scratch.path.clear();
    bool in_parameter = false;
    for (char c : target) {
      if (c == '/') in_parameter = false;
      if (c == ';') in_parameter = true;
      if (!in_parameter) scratch.path.push_back(c);
    }
    target = scratch.path;
    if (target.empty()) target = "/";  // ";x" alone: nothing but a parameter
  }

  out.clear();
  bool named = false;
  for (const RoutePattern& pattern : options_.patterns) {
    if (pattern.matches(target)) {
      out.assign(pattern.text());
      bump(pattern_matches_);
      named = true;
      break;
    }
  }
  if (!named) template_path(target, out);
  if (options_.keep_query) append_query(query, out);
  // Once, here, for every consumer (report, labels, OTLP, tap): bytes that are not UTF-8
  // (and control characters) become %XX.
  make_clean_utf8(out, scratch.clean);
}

void RouteNamer::template_path(std::string_view path, std::string& out) {
  if (path.front() != '/') {  // "*" (OPTIONS) or an authority (CONNECT): nothing to template
    out.assign(path);
    return;
  }
  size_t start = 1;
  while (true) {
    const auto slash = path.find('/', start);
    const std::string_view segment =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    std::string_view stem, ext;
    split_extension(segment, stem, ext);
    const size_t prefix_len = out.size();
    out.push_back('/');

    if (options_.redact && is_secret_like(segment)) {
      out.append(kRedactedPlaceholder);
      bump(redacted_segments_);
    } else if (options_.collapse_ids && !stem.empty() && is_id_like(stem)) {
      out.append(kIdPlaceholder).append(ext);
      bump(id_segments_);
    } else if (options_.max_segment_values == 0 || segment.empty()) {
      out.append(segment);
    } else {
      const std::string_view prefix(out.data(), prefix_len);
      const bool collapse = !keep_literal(prefix, segment);
      if (collapse) {
        out.append(kCappedPlaceholder).append(ext);
        bump(capped_segments_);
      } else {
        out.append(segment);
      }
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

bool RouteNamer::keep_literal(std::string_view prefix, std::string_view segment) {
  if (!options_.concurrent) return keep_literal_locked(prefix, segment);
  {
    // The common case, a known value or a collapsed position, only reads.
    std::shared_lock lock(positions_mu_);
    const auto it = positions_->by_prefix.find(prefix);
    if (it != positions_->by_prefix.end() &&
        (it->second.collapsed || it->second.values.contains(segment)))
      return !it->second.collapsed;
  }
  std::unique_lock lock(positions_mu_);
  return keep_literal_locked(prefix, segment);
}

bool RouteNamer::keep_literal_locked(std::string_view prefix, std::string_view segment) {
  auto it = positions_->by_prefix.find(prefix);
  if (it == positions_->by_prefix.end()) {
    if (positions_->by_prefix.size() >= options_.max_positions)
      return false;  // untracked: bounded, so collapse
    it = positions_->by_prefix.try_emplace(std::string(prefix)).first;
  }
  Position& position = it->second;
  if (position.collapsed) return false;
  if (position.values.contains(segment)) return true;
  if (position.values.size() < options_.max_segment_values) {
    position.values.emplace(segment);
    return true;
  }
  position.collapsed = true;
  position.values = {};  // release the memory; the position is a parameter now
  bump(collapsed_positions_);
  return false;
}

// "?a=1&token=xyz" -> "?a=1&token={redacted}": values of secret-named parameters and values
// that look like secrets are replaced.
void RouteNamer::append_query(std::string_view query, std::string& out) {
  if (!options_.redact || query.empty()) {
    out.append(query);
    return;
  }
  out.push_back('?');
  std::string_view rest = query.substr(1);
  while (true) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos &&
        (is_secret_parameter_name(pair.substr(0, eq)) || is_secret_like(pair.substr(eq + 1)))) {
      out.append(pair.substr(0, eq + 1)).append(kRedactedPlaceholder);
      bump(redacted_segments_);
    } else {
      out.append(pair);
    }
    if (amp == std::string_view::npos) break;
    out.push_back('&');
    rest.remove_prefix(amp + 1);
  }
}

std::string_view RouteNamer::last_route_for(std::string_view target) const {
  return target == last_target_ ? std::string_view(last_route_) : std::string_view();
}

RouteNamerCounters RouteNamer::counters() const {
  auto load = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  return {load(pattern_matches_), load(id_segments_), load(capped_segments_),
          load(collapsed_positions_), load(redacted_segments_)};
}

}  // namespace netprof
