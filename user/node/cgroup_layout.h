// What a kubelet-made cgroup v2 path says about a pod, read from directory names alone:
// which directories are pods (UID, QoS class) and which are containers (runtime, id).
//
//   systemd driver:  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/
//                      cri-containerd-<id>.scope | crio-<id>.scope | docker-<id>.scope
//   cgroupfs driver: kubepods/burstable/pod<uid>/<id>          (Guaranteed pods sit right under
//                      kubepods, BestEffort ones under besteffort)
// A kubelet --cgroup-root prefix (kind: kubelet.slice/kubelet-kubepods.slice/...) is allowed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace netprof {

enum class QosClass { kGuaranteed, kBurstable, kBestEffort };
std::string_view qos_name(QosClass qos);  // "Guaranteed", "Burstable", "BestEffort"

enum class CgroupDriver { kSystemd, kCgroupfs };

struct PodCgroupName {
  std::string uid;  // as the API server writes it: dashes, not the systemd underscores
  QosClass qos = QosClass::kGuaranteed;
  CgroupDriver driver = CgroupDriver::kSystemd;
};

// `name` is one directory name, `parent` the name of the directory holding it (the QoS
// level for cgroupfs). nullopt when it is not a pod directory.
std::optional<PodCgroupName> parse_pod_cgroup(std::string_view name, std::string_view parent);

enum class ContainerRuntime { kContainerd, kCrio, kDocker, kUnknown };
std::string_view runtime_name(ContainerRuntime runtime);  // "containerd", "cri-o", "docker", ""

struct ContainerCgroupName {
  std::string id;  // hex, as crictl/docker print it
  ContainerRuntime runtime = ContainerRuntime::kUnknown;
};

// A container directory inside a pod directory. nullopt for anything else, including CRI-O's
// conmon scopes (the monitor process, not a container).
std::optional<ContainerCgroupName> parse_container_cgroup(std::string_view name);

// Pod UID and QoS from a whole path ("/kubepods.slice/.../cri-containerd-ab.scope" or a
// /proc/PID/cgroup "0::" value): the deepest pod directory on it.
struct PodPath {
  PodCgroupName pod;
  std::string pod_dir;                           // the path up to and including the pod directory
  std::optional<ContainerCgroupName> container;  // the directory right below the pod, if any
};
std::optional<PodPath> parse_pod_path(std::string_view path);

}  // namespace netprof
