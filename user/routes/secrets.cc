#include "routes/secrets.h"

#include <algorithm>
#include <array>

namespace netprof {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_alnum(char c) { return is_digit(c) || is_lower(c) || is_upper(c); }
bool is_base64url(char c) { return is_alnum(c) || c == '-' || c == '_'; }
bool is_token_char(char c) { return is_base64url(c) || c == '+' || c == '=' || c == '~'; }
char lower(char c) { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }

bool all_of(std::string_view s, bool (*pred)(char)) {
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (lower(s[i]) != lower(prefix[i])) return false;
  return true;
}

bool equals_ci(std::string_view a, std::string_view b) {
  return a.size() == b.size() && starts_with_ci(a, b);
}

// header.payload.signature; the header of every JWT is base64url JSON, so it starts "eyJ".
bool is_jwt(std::string_view s) {
  if (s.size() < 16 || s.substr(0, 3) != "eyJ") return false;
  const auto dot1 = s.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : s.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || s.find('.', dot2 + 1) != std::string_view::npos) return false;
  const std::string_view payload = s.substr(dot1 + 1, dot2 - dot1 - 1);
  return !payload.empty() && all_of(s.substr(0, dot1), is_base64url) &&
         all_of(payload, is_base64url) && all_of(s.substr(dot2 + 1), is_base64url);
}

bool is_email(std::string_view s) {
  size_t at = s.find('@');
  size_t at_len = 1;
  if (at == std::string_view::npos) {
    for (size_t i = 0; i + 3 <= s.size(); ++i) {
      if (s[i] == '%' && s[i + 1] == '4' && s[i + 2] == '0') {
        at = i;
        at_len = 3;
        break;
      }
    }
  }
  if (at == std::string_view::npos || at == 0) return false;
  const std::string_view domain = s.substr(at + at_len);
  // "logo@2x.png", "icon@1.5x.webp": high-density image names, not addresses.
  if (!domain.empty() && is_digit(domain.front()) && domain.find("x.") != std::string_view::npos &&
      domain.find_first_not_of("0123456789.") == domain.find("x."))
    return false;
  const auto dot = domain.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 2 > domain.size()) return false;
  for (char c : domain)
    if (!is_alnum(c) && c != '-' && c != '.') return false;
  return true;
}

bool is_prefixed_key(std::string_view s) {
  // AWS access key ids: a 4-letter type prefix and 16 upper-case letters or digits.
  static constexpr std::array<std::string_view, 12> kAws = {
      "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "AROA", "APKA", "ASCA"};
  if (s.size() == 20) {
    for (std::string_view p : kAws) {
      if (s.substr(0, 4) == p) {
        bool rest = true;
        for (char c : s.substr(4)) rest &= is_upper(c) || is_digit(c);
        if (rest) return true;
      }
    }
  }
  static constexpr std::array<std::string_view, 16> kPrefixes = {
      "ghp_",    "gho_",    "ghu_",     "ghs_",     "ghr_",     "github_pat_", "glpat-",  "xoxb-",
      "xoxp-",   "xoxa-",   "xoxr-",    "sk_live_", "rk_live_", "sk_test_",    "pk_live_", "AIza"};
  for (std::string_view p : kPrefixes) {
    if (s.size() >= p.size() + 16 && s.substr(0, p.size()) == p &&
        all_of(s.substr(p.size()), is_token_char))
      return true;
  }
  return false;
}

// Random base64 has lower-case runs of ~1.7 characters on average; words in CamelCase,
// kebab-case or snake_case have runs of 3 or more.
bool is_random_token(std::string_view s) {
  constexpr size_t kMinLength = 20;
  if (s.size() < kMinLength || !all_of(s, is_token_char)) return false;
  size_t upper = 0, lower_total = 0, runs = 0;
  bool in_run = false;
  for (char c : s) {
    upper += is_upper(c);
    if (is_lower(c)) {
      ++lower_total;
      if (!in_run) ++runs;
      in_run = true;
    } else {
      in_run = false;
    }
  }
  if (upper < 2 || lower_total < 2) return false;
  return lower_total * 2 < runs * 5;  // mean lower-case run below 2.5
}

}  // namespace

bool is_secret_like(std::string_view segment) {
  return is_jwt(segment) || is_email(segment) || is_prefixed_key(segment) ||
         is_random_token(segment);
}

bool is_secret_parameter_name(std::string_view name) {
  static constexpr std::array<std::string_view, 20> kNames = {
      "password",     "passwd",        "pwd",      "secret",    "client_secret",
      "token",        "access_token",  "id_token", "refresh_token", "auth",
      "authorization", "api_key",      "apikey",   "key",       "session",
      "sessionid",    "jsessionid",    "sid",      "sig",       "signature"};
  for (std::string_view n : kNames)
    if (equals_ci(name, n)) return true;
  return false;
}

std::string without_userinfo(std::string_view target) {
  const auto scheme = target.find("://");
  if (scheme == std::string_view::npos || target.empty() || target.front() == '/')
    return std::string(target);
  const size_t authority = scheme + 3;
  const size_t end = std::min(target.find_first_of("/?#", authority), target.size());
  const auto at = target.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < authority) return std::string(target);
  std::string out(target.substr(0, authority));
  out.append(target.substr(at + 1));
  return out;
}

}  // namespace netprof
