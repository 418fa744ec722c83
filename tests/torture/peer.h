// One side of a relayed conversation in the byte-exactness torture: sends its bytes in random
// pieces at random moments (as far as `allowed` permits, which is how HTTP peers wait for
// each other), reads everything the other side sends, and hashes what it received.
#pragma once

#include <cstddef>
#include <functional>
#include <random>
#include <string>

namespace netprof::torture {

struct PeerResult {
  std::string received_sha256;
  size_t received_bytes = 0;
  size_t sent_bytes = 0;
  std::string error;  // empty = the conversation ended with EOF both ways
};

struct PeerOptions {
  bool slow_reader = false;      // small reads with pauses: exercises back-pressure
  size_t max_write = 65536;      // writes are 1..max_write bytes
  int deadline_ms = 60000;
};

// `fd` is a connected socket (made non-blocking here; closed by the caller). `prefix` are
// bytes already read from it. `allowed(received)` says how many bytes of `bytes` may have
// been sent once `received` bytes came in.
PeerResult run_peer(int fd, const std::string& bytes, const std::string& prefix,
                    const std::function<size_t(size_t received)>& allowed,
                    std::mt19937_64& rng, const PeerOptions& options);

}  // namespace netprof::torture
