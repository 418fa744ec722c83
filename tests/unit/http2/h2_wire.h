// Byte builders for HTTP/2 test literals: frames (RFC 9113 4.1) and HPACK fields without
// Huffman coding (RFC 7541 6.2), so every expected byte can be read off the test.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace netprof::testing::h2 {

enum : uint8_t {
  DATA = 0,
  HEADERS = 1,
  PRIORITY = 2,
  RST_STREAM = 3,
  SETTINGS = 4,
  PUSH_PROMISE = 5,
  PING = 6,
  GOAWAY = 7,
  WINDOW_UPDATE = 8,
  CONTINUATION = 9
};
enum : uint8_t { END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIO = 0x20 };

inline std::string u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string frame(uint8_t type, uint8_t flags, uint32_t sid, std::string_view payload) {
  const auto n = static_cast<uint32_t>(payload.size());
  std::string f{static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n),
                static_cast<char>(type), static_cast<char>(flags)};
  f += u32(sid);
  f += payload;
  return f;
}

// HPACK integer with an n-bit prefix whose high bits are `first`.
inline std::string integer(uint8_t first, int prefix_bits, uint32_t v) {
  const uint32_t max = (1u << prefix_bits) - 1;
  std::string out;
  if (v < max) {
    out += static_cast<char>(first | v);
    return out;
  }
  out += static_cast<char>(first | max);
  v -= max;
  while (v >= 128) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

inline std::string str(std::string_view s) {
  return integer(0, 7, static_cast<uint32_t>(s.size())) + std::string(s);
}

inline std::string indexed(uint32_t index) { return integer(0x80, 7, index); }
// Literal without indexing, name from the table.
inline std::string literal(uint32_t name_index, std::string_view value) {
  return integer(0x00, 4, name_index) + str(value);
}
// Literal without indexing, new name.
inline std::string literal(std::string_view name, std::string_view value) {
  return std::string(1, '\0') + str(name) + str(value);
}
// Literal with incremental indexing (enters the dynamic table), name from the table.
inline std::string indexing(uint32_t name_index, std::string_view value) {
  return integer(0x40, 6, name_index) + str(value);
}
inline std::string table_size_update(uint32_t size) { return integer(0x20, 5, size); }

// Static table indexes (RFC 7541 Appendix A).
inline constexpr uint32_t kMethodGet = 2, kMethodPost = 3, kPathRoot = 4, kPath = 4,
                          kSchemeHttp = 6, kStatus200 = 8, kStatus204 = 9, kStatus404 = 13,
                          kStatus500 = 14, kStatus = 8, kAuthority = 1, kContentType = 31;

inline std::string get(std::string_view path) {
  return indexed(kMethodGet) + indexed(kSchemeHttp) + literal(kPath, path) +
         literal(kAuthority, "example");
}

inline std::string settings(std::string_view entries = {}) {
  return frame(SETTINGS, 0, 0, entries);
}
inline std::string setting(uint16_t id, uint32_t value) {
  return std::string{static_cast<char>(id >> 8), static_cast<char>(id)} + u32(value);
}

}  // namespace netprof::testing::h2
