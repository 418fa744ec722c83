// Finds the pods of a node by walking the kubelet's cgroup v2 tree. Only directory names are
// read here (see cgroup_layout.h); processes and namespaces are pod_identity.h's business.
#pragma once

#include <string>
#include <vector>

#include "node/cgroup_layout.h"

namespace netprof {

struct PodCgroup {
  PodCgroupName name;
  std::string dir;  // absolute cgroup directory of the pod
  std::vector<ContainerCgroupName> containers;
  std::vector<std::string> container_dirs;  // same order as containers
};

struct PodScan {
  std::vector<PodCgroup> pods;  // sorted by UID
  // Directories whose new children may be pods or containers: the ones to watch for changes.
  std::vector<std::string> watch_dirs;
};

// Below `root`, only directories that can lead to pods are entered (names with "kube" in
// them, and the QoS levels), at most kMaxPodDepth levels deep, so a root at the cgroup2
// mount does not walk every systemd service.
inline constexpr int kMaxPodDepth = 6;
PodScan scan_pod_cgroups(const std::string& root);

}  // namespace netprof
