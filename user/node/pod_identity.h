// Who a pod is and where its network lives. The netns comes from /proc/PID/ns/net of one of
// its processes. The name and Kubernetes namespace come, in this order, from:
//   1. the kubelet's own record: /var/log/pods/<namespace>_<name>_<uid>/ (every pod has one,
//      from the moment its sandbox is created; no API server needed);
//   2. the hostname of the pod's UTS namespace (the pod name unless spec.hostname is set) and
//      the service-account namespace file inside a container, read with RESOLVE_IN_ROOT.
// Fallbacks are read only through the app's own processes: a container's first process is
// the runtime's init (runc:[2:INIT]) until the app is exec'd, and the hostname is set after
// the runtime's prestart hooks, so reading it earlier gives the node's name.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.h"
#include "node/pod_scan.h"

namespace netprof {

// Where a name or namespace came from (reported in /stats and in the logs).
inline constexpr std::string_view kSourceKubelet = "kubelet";    // /var/log/pods
inline constexpr std::string_view kSourceHostname = "hostname";  // the UTS nodename
inline constexpr std::string_view kSourceServiceAccount = "service-account";

// What a report or metric says about a pod.
struct PodIdentity {
  std::string name;           // "" until a source names it
  std::string k8s_namespace;  // "" until a source gives it
  std::string name_source;    // kSource*, "" when unnamed
  std::string namespace_source;
  std::string uid;
  std::string qos;  // "Guaranteed", "Burstable", "BestEffort"
  std::vector<std::string> container_ids;
  std::string runtime;  // "containerd", "cri-o", "docker" or "" (cgroupfs: not in the name)

  // The kubelet's record is final; names from the fallbacks are re-read until it appears.
  bool settled() const { return name_source == kSourceKubelet; }
};

// What a process of a pod is, from /proc/PID/comm.
enum class ProcessRole {
  kApp,          // the app (or its init, e.g. tini/docker-init, which runs after setup)
  kRuntimeInit,  // the runtime still setting the container up: runc:[0:PARENT]..[2:INIT]
  kInfra,        // the pod sandbox's pause process: holds the namespaces, mounts nothing
};
ProcessRole classify_comm(std::string_view comm);

struct PodProcess {
  pid_t pid = 0;
  ProcessRole role = ProcessRole::kApp;
};

// The processes of the pod, the pod's own cgroup first, then each container's (first
// process of each; every container shares the pod's netns and UTS namespace).
std::vector<PodProcess> pod_processes(const PodCgroup& pod);

struct PodNetwork {
  pid_t pid = 0;           // the process the netns was opened through
  std::string netns_path;  // /proc/PID/ns/net
  ino_t netns_inode = 0;   // changes when the pod sandbox is recreated
  // Every process found is in one of the skipped namespaces: a hostNetwork pod (it shares
  // the node's netns; intercepting it would steer the node's own traffic), netprof's own
  // pod, or a pod whose processes have not entered its netns yet. Never intercepted.
  bool shares_skipped_netns = false;
};

// The netns of the first of `processes` that still exists, is not the runtime's init (its
// namespaces may not be final yet) and is not in one of `skip_inodes`; failing that, the
// first in a skipped one (shares_skipped_netns). An error when there is none yet (a pod
// whose cgroup is created before its processes join).
Expected<PodNetwork> pod_network(const std::vector<PodProcess>& processes,
                                 const std::vector<ino_t>& skip_inodes);

// The inode of a namespace link such as /proc/1/ns/net; an error with errno if unreadable.
Expected<ino_t> namespace_inode_of(const std::string& path);
// The same, 0 if unreadable.
ino_t namespace_inode(const std::string& path);

// The nodename of the UTS namespace at `uts_path` (/proc/PID/ns/uts), read by a short-lived
// thread that enters it (setns needs CAP_SYS_ADMIN).
std::optional<std::string> uts_nodename(const std::string& uts_path);

// Reads `path` inside the file system rooted at `root` (/proc/PID/root): openat2() with
// RESOLVE_IN_ROOT, so absolute symlinks such as /var/run -> /run resolve inside the
// container, not in netprof's own file system. At most `max_bytes` are read.
Expected<std::string> read_file_in_root(const std::string& root, const std::string& path,
                                        size_t max_bytes = 4096);

// The pod's hostname: its UTS namespace's nodename, falling back to /etc/hostname inside
// the container (without CAP_SYS_ADMIN).
std::optional<std::string> pod_hostname(pid_t pid);

// The namespace from the service-account mount of the first app process that has one.
std::string pod_k8s_namespace(const std::vector<PodProcess>& processes);

// The kubelet's record of one pod: a directory name "<namespace>_<name>_<uid>".
struct KubeletPodRecord {
  std::string k8s_namespace;
  std::string name;
  std::string uid;
};
std::optional<KubeletPodRecord> parse_pod_log_dir(std::string_view dir_name);

// Every record below `dir` (/var/log/pods) by UID. An error (with errno) when `dir` cannot
// be listed, a missing directory included: the caller decides whether that matters.
using KubeletPods = std::map<std::string, KubeletPodRecord>;
Expected<KubeletPods> read_kubelet_pods(const std::string& dir);

// The pod's identity from the kubelet's record when `kubelet` has it, else from the app
// processes among `processes`. A hostname equal to `node_hostname` (the node's own, what a
// container sees before the runtime sets its hostname) never names a pod.
PodIdentity identify_pod(const PodCgroup& pod, const std::vector<PodProcess>& processes,
                         const KubeletPods& kubelet, const std::string& node_hostname);

}  // namespace netprof
