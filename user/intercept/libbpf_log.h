// Routes libbpf's own log (verifier output, feature probing) to stderr, and only when the
// user asked for it with --verbose: normal runs stay quiet, failures say how to see more.
#pragma once

namespace netprof {

void set_libbpf_verbose(bool verbose);
bool libbpf_verbose();

}  // namespace netprof
