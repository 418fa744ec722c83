// gRPC naming. A gRPC call's route is its full method, "/package.Service/Method", never
// templated: RPC names are a closed set, and a method segment that looks like an id is still
// a method. Bytes outside what protobuf names and the path use become %XX, so the route is
// always printable ASCII whatever a client sends.
#pragma once

#include <string>
#include <string_view>

namespace netprof {

inline void grpc_route_of(std::string_view path, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.clear();
  path = path.substr(0, path.find('?'));
  for (const char c : path) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (c >= '0' && c <= '9') || c == '/' || c == '.' || c == '_' || c == '-';
    if (plain) {
      out.push_back(c);
    } else {
      const auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xf]);
    }
  }
}

// "/package.Service/Method" -> ("package.Service", "Method"); empty views if it is not one.
inline void grpc_split_method(std::string_view route, std::string_view& service,
                              std::string_view& method) {
  service = method = {};
  if (route.size() < 4 || route[0] != '/') return;
  const size_t slash = route.find('/', 1);
  if (slash == std::string_view::npos || slash + 1 >= route.size()) return;
  service = route.substr(1, slash - 1);
  method = route.substr(slash + 1);
}

}  // namespace netprof
