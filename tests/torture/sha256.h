// SHA-256 (FIPS 180-4), incremental. The torture tests hash every byte each side sent and
// received; written here so the tests need no crypto library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace netprof::torture {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Finishes and returns the lowercase hex digest; the object is reset afterwards.
  std::string hex();
  uint64_t length() const { return total_; }

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view s);

}  // namespace netprof::torture
