// Which path segments and query values look like secrets, so that they never become a route,
// a metric label or a report key. Heuristics: they catch the usual shapes, not every secret.
//  - JSON Web Tokens ("eyJ...", three base64url parts separated by dots);
//  - e-mail addresses (local@domain.tld, also with the '@' written as %40);
//  - cloud and SaaS keys with a known prefix: AWS access key ids (AKIA..., ASIA...), GitHub
//    (ghp_, github_pat_), GitLab (glpat-), Slack (xox?-), Stripe (sk_live_...), Google (AIza);
//  - long random-looking tokens: 20+ base64url characters with upper and lower case letters
//    and short lower-case runs (random text, not CamelCase words).
// Numbers, UUIDs and hex hashes are ids ({id}, routes/id_like.h), not secrets.
#pragma once

#include <string>
#include <string_view>

namespace netprof {

bool is_secret_like(std::string_view segment);

// Query parameter names whose values are secrets whatever they look like (password, token,
// api_key, session, ...); compared case-insensitively.
bool is_secret_parameter_name(std::string_view name);

// An absolute-form request target without its userinfo: "http://user:pw@host/p" ->
// "http://host/p". Other targets are returned as they are.
std::string without_userinfo(std::string_view target);

}  // namespace netprof
