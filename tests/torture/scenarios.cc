#include "scenarios.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace netprof::torture {
namespace {

size_t pick(std::mt19937_64& rng, size_t lo, size_t hi) {  // inclusive
  return std::uniform_int_distribution<size_t>(lo, hi)(rng);
}
bool chance(std::mt19937_64& rng, double p) { return std::bernoulli_distribution(p)(rng); }

// Body sizes: mostly small, sometimes large enough to fill socket and relay buffers.
size_t body_size(std::mt19937_64& rng) {
  switch (pick(rng, 0, 9)) {
    case 0: return 0;
    case 1: case 2: case 3: case 4: return pick(rng, 1, 200);
    case 5: case 6: case 7: return pick(rng, 200, 8000);
    case 8: return pick(rng, 8000, 70000);
    default: return pick(rng, 70000, 300000);
  }
}

std::string hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// A chunked encoding of `body` with random chunk sizes, optional extensions and trailers.
std::string chunked(std::mt19937_64& rng, const std::string& body) {
  std::string out;
  size_t at = 0;
  while (at < body.size()) {
    const size_t n = std::min(body.size() - at, pick(rng, 1, 20000));
    char size[32];
    std::snprintf(size, sizeof size, chance(rng, 0.5) ? "%zx" : "%zX", n);
    out += size;
    if (chance(rng, 0.1)) out += ";ext=v";
    out += "\r\n";
    out.append(body, at, n);
    out += "\r\n";
    at += n;
  }
  out += "0\r\n";
  if (chance(rng, 0.2)) out += "X-Trailer: t\r\n";
  out += "\r\n";
  return out;
}

void add_random_headers(std::mt19937_64& rng, std::string& out) {
  const size_t n = pick(rng, 0, 6);
  for (size_t i = 0; i < n; ++i) {
    out += "X-Torture-" + std::to_string(i) + ": ";
    const size_t len = chance(rng, 0.1) ? pick(rng, 500, 6000) : pick(rng, 0, 40);
    for (size_t k = 0; k < len; ++k) out += static_cast<char>('a' + pick(rng, 0, 25));
    out += "\r\n";
  }
}

}  // namespace

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

const char* Scenario::kind_name() const {
  switch (kind) {
    case Kind::kHttp1: return pipelined ? "http pipelined" : "http";
    case Kind::kOpaque: return "opaque";
    case Kind::kH2: return pipelined ? "h2 pipelined" : "h2";
    case Kind::kTls: return "tls";
  }
  return "?";
}

bool starts_with_h2_preface(const std::string& first) {
  static const std::string kPreface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  return first.compare(0, kPreface.size(), kPreface) == 0;
}

uint32_t find_scenario_tag(const std::string& first) {
  if (starts_with_h2_preface(first)) {
    if (first.size() < kH2TagBytes) return UINT32_MAX;
    const auto* p = reinterpret_cast<const uint8_t*>(first.data()) + kH2TagBytes - 4;
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
  }
  if (first.compare(0, 4, "NPXB") == 0 && first.size() >= 12)
    return static_cast<uint32_t>(std::strtoul(first.substr(4, 8).c_str(), nullptr, 16));
  const size_t at = first.find(" /t/");
  if (at == std::string::npos || first.size() < at + 12) return UINT32_MAX;
  return static_cast<uint32_t>(std::strtoul(first.substr(at + 4, 8).c_str(), nullptr, 16));
}

Scenario make_http_scenario(uint32_t id, std::mt19937_64& rng) {
  Scenario s;
  s.id = id;
  s.kind = Kind::kHttp1;
  s.pipelined = chance(rng, 0.5);
  const size_t requests = pick(rng, 1, 12);
  // The last response may be delimited by the server closing instead of a length.
  const bool close_delimited_last = chance(rng, 0.15);
  for (size_t i = 0; i < requests; ++i) {
    const bool last = i + 1 == requests;
    // ---- request
    static const char* kMethods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD",
                                     "PATCH", "OPTIONS"};
    const std::string method = kMethods[pick(rng, 0, std::size(kMethods) - 1)];
    const bool head = method == "HEAD";
    std::string req = method + " /t/" + hex8(id) + "/r" + std::to_string(i);
    if (chance(rng, 0.3)) req += "?q=" + std::to_string(rng() % 100000);
    req += " HTTP/1.1\r\nHost: torture\r\n";
    add_random_headers(rng, req);
    const bool has_body = method == "POST" || method == "PUT" || method == "PATCH";
    if (has_body) {
      const std::string body = random_bytes(rng, body_size(rng));
      if (chance(rng, 0.4)) {
        req += "Transfer-Encoding: chunked\r\n\r\n" + chunked(rng, body);
      } else {
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      }
    } else {
      req += "\r\n";
    }
    s.client_bytes += req;
    s.request_ends.push_back(s.client_bytes.size());

    // ---- response
    std::string resp;
    if (has_body && chance(rng, 0.15)) resp += "HTTP/1.1 100 Continue\r\n\r\n";
    static const uint16_t kStatus[] = {200, 200, 200, 201, 204, 301, 304, 404, 500, 503};
    const uint16_t status = kStatus[pick(rng, 0, std::size(kStatus) - 1)];
    s.statuses[status]++;
    if (status >= 500) ++s.errors;  // the store counts 5xx as errors
    resp += "HTTP/1.1 " + std::to_string(status) + " Torture\r\nServer: torture\r\n";
    add_random_headers(rng, resp);
    const bool no_body = status == 204 || status == 304;
    if (last && close_delimited_last && !no_body && !head) {
      resp += "Connection: close\r\n\r\n" + random_bytes(rng, body_size(rng));
    } else if (no_body) {
      resp += "\r\n";
    } else if (head) {
      // A HEAD response announces a length but carries no body.
      resp += "Content-Length: " + std::to_string(pick(rng, 0, 100000)) + "\r\n\r\n";
    } else {
      const std::string body = random_bytes(rng, body_size(rng));
      if (chance(rng, 0.4)) {
        resp += "Transfer-Encoding: chunked\r\n\r\n" + chunked(rng, body);
      } else {
        resp += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      }
    }
    s.server_bytes += resp;
    s.response_ends.push_back(s.server_bytes.size());
  }
  s.exchanges = requests;
  s.request_bytes = s.client_bytes.size();
  s.response_bytes = s.server_bytes.size();
  return s;
}

Scenario make_opaque_scenario(uint32_t id, std::mt19937_64& rng, size_t max_bytes) {
  Scenario s;
  s.id = id;
  s.kind = Kind::kOpaque;
  s.client_bytes = "NPXB" + hex8(id) + random_bytes(rng, pick(rng, kTagBytes, max_bytes));
  s.server_bytes = random_bytes(rng, pick(rng, 0, max_bytes));
  return s;
}

}  // namespace netprof::torture
