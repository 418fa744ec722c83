// What this kernel and this process can do for interception, each probed for real (load a
// tiny program, create a map, attach a link) rather than guessed from the version string.
// Used by `netprof check`.
#pragma once

#include <string>
#include <vector>

namespace netprof {

enum class Need : unsigned {
  kInbound = 1u << 0,   // sk_lookup steering into the pod
  kOutbound = 1u << 1,  // cgroup connect rewrite + sock_ops tuple
  kSkMsg = 1u << 2,     // sk_msg fast path
  kAll = kInbound | kOutbound | kSkMsg,
  kNone = 0,
};

struct Feature {
  std::string name;        // "sk_lookup program"
  std::string min_kernel;  // mainline version that added it, "5.9"
  unsigned needed_by = 0;  // Need bits; 0 = informational
  bool available = false;
  std::string detail;      // what it is for, or why it is missing
  std::string fixed_in;    // a kernel bug rather than a feature: where it is fixed
};

struct FeatureReport {
  std::string kernel;      // uname -r
  std::vector<Feature> features;
  bool inbound = false;    // every feature inbound needs is there
  bool outbound = false;
  bool skmsg = false;
};

FeatureReport probe_features();

}  // namespace netprof
