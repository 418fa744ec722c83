// Writing for the demo's own server and client (blocking sockets). Messages are read with the
// one HTTP/1.1 framer, http/message_reader.h.
#pragma once

#include <string>

namespace netprof::demo_wire {

bool write_all(int fd, const std::string& bytes);

}  // namespace netprof::demo_wire
