// Who a pod is and where its network lives, found through one of its processes: the netns
// from /proc/PID/ns/net, the pod name from the hostname of its UTS namespace, the
// Kubernetes namespace from its service-account mount when it has one.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "intercept/expected.h"
#include "node/pod_scan.h"

namespace netprof {

// What a report or metric says about a pod.
struct PodIdentity {
  std::string name;           // the pod's hostname: the pod name unless spec.hostname is set
  std::string k8s_namespace;  // "" when no container has a service-account mount
  std::string uid;
  std::string qos;  // "Guaranteed", "Burstable", "BestEffort"
  std::vector<std::string> container_ids;
  std::string runtime;  // "containerd", "cri-o", "docker" or "" (cgroupfs: not in the name)
};

struct PodNetwork {
  pid_t pid = 0;           // the process the netns was opened through
  std::string netns_path;  // /proc/PID/ns/net
  ino_t netns_inode = 0;   // changes when the pod sandbox is recreated
};

// The processes of the pod, the pod's own cgroup first, then each container's (first
// process of each; every container shares the pod's netns and UTS namespace).
std::vector<pid_t> pod_processes(const PodCgroup& pod);

// The netns of the first of `pids` that still exists. An error when none does yet (a pod
// whose cgroup is created before its processes join) or when it is one of `skip_inodes`:
// a hostNetwork pod shares the node's netns (intercepting it would steer the node's own
// traffic), and netprof's own pod must not intercept itself.
Expected<PodNetwork> pod_network(const std::vector<pid_t>& pids,
                                 const std::vector<ino_t>& skip_inodes);

// The inode of a namespace link such as /proc/1/ns/net; 0 if unreadable.
ino_t namespace_inode(const std::string& path);

// The nodename of the UTS namespace of `pid`, read by a short-lived thread that enters it
// (setns needs CAP_SYS_ADMIN), falling back to /proc/PID/root/etc/hostname.
std::optional<std::string> pod_hostname(pid_t pid);

// The namespace in the first of `pids` whose container mounts a service-account token.
std::string pod_k8s_namespace(const std::vector<pid_t>& pids);

PodIdentity identify_pod(const PodCgroup& pod, const std::vector<pid_t>& pids);

}  // namespace netprof
