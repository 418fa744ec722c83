#include "tls/hello.h"

#include <algorithm>
#include <cstring>

namespace netprof::tls {
namespace {

// Reads big-endian fields off a byte span; any read past the end sets `bad` and yields 0, so a
// parser checks once at the end of each step instead of before every read.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  bool bad() const { return bad_; }
  bool empty() const { return at_ == bytes_.size(); }
  size_t left() const { return bytes_.size() - at_; }

  uint32_t u8() { return take(1) ? bytes_[at_ - 1] : 0; }
  uint32_t u16() { return take(2) ? (uint32_t{bytes_[at_ - 2]} << 8) | bytes_[at_ - 1] : 0; }
  std::span<const uint8_t> bytes(size_t n) {
    if (!take(n)) return {};
    return bytes_.subspan(at_ - n, n);
  }
  // A length-prefixed vector (1 or 2 length bytes), as its own reader.
  Reader vec8() { return Reader(bytes(u8())); }
  Reader vec16() { return Reader(bytes(u16())); }

 private:
  bool take(size_t n) {
    if (bad_ || n > left()) {
      bad_ = true;
      return false;
    }
    at_ += n;
    return true;
  }
  std::span<const uint8_t> bytes_;
  size_t at_ = 0;
  bool bad_ = false;
};

constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtSupportedVersions = 43;
constexpr uint16_t kTls13 = 0x0304;

// SHA-256("HelloRetryRequest"), the random of a HelloRetryRequest (RFC 8446 4.1.3).
constexpr uint8_t kHelloRetryRandom[32] = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};

std::string as_string(std::span<const uint8_t> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// ALPN's ProtocolNameList: each id 1..255 bytes, the list non-empty.
bool parse_alpn_list(Reader ext, std::vector<std::string>& out, size_t max) {
  Reader list = ext.vec16();
  if (ext.bad() || !ext.empty() || list.empty()) return false;
  while (!list.empty()) {
    const std::span<const uint8_t> id = list.bytes(list.u8());
    if (list.bad() || id.empty()) return false;
    if (out.size() < max)
      out.push_back(as_string(id.subspan(0, std::min(id.size(), kMaxAlpnBytes))));
  }
  return true;
}

}  // namespace

bool parse_client_hello(std::span<const uint8_t> body, ClientHello& out) {
  out = ClientHello{};
  Reader r(body);
  out.legacy_version = static_cast<uint16_t>(r.u16());
  r.bytes(32);  // random
  Reader session = r.vec8();
  Reader suites = r.vec16();
  Reader compression = r.vec8();
  if (r.bad() || session.left() > 32 || suites.left() < 2 || suites.left() % 2 != 0 ||
      compression.empty())
    return false;
  if ((out.legacy_version >> 8) != 3) return false;
  if (r.empty()) return true;  // no extensions (SSL 3.0 style): no SNI, no ALPN
  Reader extensions = r.vec16();
  if (r.bad() || !r.empty()) return false;
  bool seen_sni = false, seen_alpn = false, seen_versions = false;
  while (!extensions.empty()) {
    const uint32_t type = extensions.u16();
    Reader ext = extensions.vec16();
    if (extensions.bad()) return false;
    switch (type) {
      case kExtServerName: {
        if (seen_sni) return false;  // each extension at most once (RFC 8446 4.2)
        seen_sni = true;
        Reader list = ext.vec16();
        if (ext.bad() || !ext.empty()) return false;
        while (!list.empty()) {
          const uint32_t name_type = list.u8();
          const std::span<const uint8_t> name = list.bytes(list.u16());
          if (list.bad()) return false;
          if (name_type != 0 || !out.server_name.empty()) continue;  // host_name, the first one
          if (name.empty() || name.size() > kMaxServerNameBytes) return false;
          out.server_name = as_string(name);
        }
        break;
      }
      case kExtAlpn:
        if (seen_alpn) return false;
        seen_alpn = true;
        if (!parse_alpn_list(ext, out.alpn, kMaxAlpnOffers)) return false;
        break;
      case kExtSupportedVersions: {
        if (seen_versions) return false;
        seen_versions = true;
        Reader versions = ext.vec8();
        if (ext.bad() || !ext.empty() || versions.left() % 2 != 0) return false;
        while (!versions.empty())
          if (versions.u16() == kTls13) out.offers_tls13 = true;
        break;
      }
      default:
        break;  // not read: its bytes were skipped by vec16()
    }
  }
  return true;
}

bool parse_server_hello(std::span<const uint8_t> body, ServerHello& out) {
  out = ServerHello{};
  Reader r(body);
  const uint16_t legacy_version = static_cast<uint16_t>(r.u16());
  const std::span<const uint8_t> random = r.bytes(32);
  Reader session = r.vec8();
  out.cipher_suite = static_cast<uint16_t>(r.u16());
  r.u8();  // compression method
  if (r.bad() || session.left() > 32 || (legacy_version >> 8) != 3) return false;
  out.version = legacy_version;
  out.hello_retry_request = std::memcmp(random.data(), kHelloRetryRandom, 32) == 0;
  if (r.empty()) return true;
  Reader extensions = r.vec16();
  if (r.bad() || !r.empty()) return false;
  bool seen_alpn = false, seen_versions = false;
  while (!extensions.empty()) {
    const uint32_t type = extensions.u16();
    Reader ext = extensions.vec16();
    if (extensions.bad()) return false;
    if (type == kExtAlpn) {
      if (seen_alpn) return false;
      seen_alpn = true;
      std::vector<std::string> chosen;
      // The server selects exactly one protocol (RFC 7301 3.1).
      if (!parse_alpn_list(ext, chosen, 2) || chosen.size() != 1) return false;
      out.alpn = std::move(chosen.front());
    } else if (type == kExtSupportedVersions) {
      if (seen_versions) return false;
      seen_versions = true;
      out.version = static_cast<uint16_t>(ext.u16());
      if (ext.bad() || !ext.empty()) return false;
    }
  }
  return true;
}

std::string clean_server_name(std::string_view sni) {
  if (sni.size() > kMaxServerNameBytes) return "{invalid}";
  std::string out(sni);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                    c == '_' || c == '*';
    if (!ok) return "{invalid}";
  }
  return out;
}

std::string clean_alpn(std::string_view id) {
  for (char c : id)
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return "{invalid}";
  return std::string(id);
}

}  // namespace netprof::tls
