// libFuzzer target: the admin API's request-head parser and Host check fed arbitrary bytes
// (user/admin/http_server.h). Bytes up to the first "\r\n\r\n" (or all of them) are a head;
// every parsed field is touched (ASan sees views into freed memory) and checked against what
// the server relies on. Built as tracker_fuzz is (see CMakeLists.txt), replayed by ctest.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "admin/http_server.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "admin_request_fuzz: invariant broken: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view head = input.substr(0, input.find("\r\n\r\n"));
  netprof::HttpRequest req;
  bool keep_alive = false;
  const std::vector<std::string> allowed = {"netprof.example"};
  if (netprof::parse_request_head(head, req, keep_alive)) {
    if (req.method.find(' ') != std::string::npos) fail("space in the method");
    if (req.path.find('?') != std::string::npos) fail("query left in the path");
    if (req.path.size() > head.size()) fail("path longer than the head");
    for (const auto& [name, value] : req.headers) {
      for (char c : name)
        if (c >= 'A' && c <= 'Z') fail("header name not lower-cased");
      if (req.header(name).data() == nullptr && !value.empty()) fail("header lookup lost it");
      (void)netprof::host_allowed(value, allowed);
    }
    for (const auto& [k, v] : req.query) {
      if (req.param(k).size() > head.size()) fail("query value longer than the head");
      (void)v;
    }
    (void)netprof::host_allowed(req.header("host"), allowed);
  }
  // Every Host the check accepts is a name it knows or an address literal: never one with
  // a path, userinfo or whitespace inside.
  if (netprof::host_allowed(input, allowed)) {
    for (char c : input)
      if (c == '/' || c == '@' || c == '\r' || c == '\n' || c == '\0') fail("odd Host accepted");
  }
  const std::string decoded = netprof::percent_decode(input);
  if (decoded.size() > input.size()) fail("percent_decode grew the text");
  return 0;
}
