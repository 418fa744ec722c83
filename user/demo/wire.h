// Just enough blocking HTTP/1.1 message framing for the demo's own server and clients:
// header block up to CRLFCRLF, then Content-Length bytes of body.
#pragma once

#include <string>

namespace netprof::demo_wire {

struct Message {
  std::string head;  // start line and headers, without the final CRLFCRLF
  std::string body;
};

// Reads one message from `fd`, keeping extra bytes in `carry` for the next call.
// Returns false on EOF, error or a malformed message.
bool read_message(int fd, std::string& carry, Message& out);
bool write_all(int fd, const std::string& bytes);

}  // namespace netprof::demo_wire
