// Randomized conversations for the byte-exactness torture: what a client sends, what the
// server answers, and where each request and response ends, so both test peers can pace
// themselves like real HTTP peers (or not at all, for opaque streams).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace netprof::torture {

struct Scenario {
  uint32_t id = 0;
  bool http = true;          // false: opaque binary streams, both directions at once
  bool pipelined = false;    // client sends requests without waiting for responses
  std::string client_bytes;  // everything the client sends
  std::string server_bytes;  // everything the server sends
  std::vector<size_t> request_ends;   // offsets in client_bytes where request i ends
  std::vector<size_t> response_ends;  // offsets in server_bytes where response i ends
  std::map<uint16_t, uint64_t> statuses;  // final status -> count
};

// The tag every stream starts with lets the backend find the scenario of a connection.
constexpr size_t kTagBytes = 32;  // the backend reads this much before it looks
uint32_t find_scenario_tag(const std::string& first_bytes);  // UINT32_MAX if none

Scenario make_http_scenario(uint32_t id, std::mt19937_64& rng);
Scenario make_opaque_scenario(uint32_t id, std::mt19937_64& rng, size_t max_bytes);

std::string random_bytes(std::mt19937_64& rng, size_t n);

}  // namespace netprof::torture
