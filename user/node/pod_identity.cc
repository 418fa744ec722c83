#include "node/pod_identity.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <thread>

#include "intercept/unique_fd.h"

namespace netprof {
namespace {

std::optional<pid_t> first_pid(const std::string& cgroup_dir) {
  std::ifstream procs(cgroup_dir + "/cgroup.procs");
  long pid = 0;
  if (procs >> pid && pid > 0) return static_cast<pid_t>(pid);
  return std::nullopt;
}

std::string first_line(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' '))
    line.pop_back();
  return line;
}

}  // namespace

std::vector<pid_t> pod_processes(const PodCgroup& pod) {
  std::vector<pid_t> pids;
  if (auto pid = first_pid(pod.dir)) pids.push_back(*pid);
  for (const std::string& dir : pod.container_dirs)
    if (auto pid = first_pid(dir)) pids.push_back(*pid);
  return pids;
}

ino_t namespace_inode(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

Expected<PodNetwork> pod_network(const std::vector<pid_t>& pids,
                                 const std::vector<ino_t>& skip_inodes) {
  if (pids.empty()) return Error{"no process in the pod's cgroup yet"};
  for (pid_t pid : pids) {
    PodNetwork network;
    network.pid = pid;
    network.netns_path = "/proc/" + std::to_string(pid) + "/ns/net";
    network.netns_inode = namespace_inode(network.netns_path);
    if (network.netns_inode == 0) continue;  // exited meanwhile, or no ptrace access
    if (std::find(skip_inodes.begin(), skip_inodes.end(), network.netns_inode) != skip_inodes.end())
      return Error{"shares the node's or netprof's network namespace (hostNetwork?): skipped"};
    return network;
  }
  return errno_error("cannot read the network namespace of the pod's processes", errno);
}

std::optional<std::string> pod_hostname(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  // The kernel's nodename is what the app itself sees (the origin used os.hostname()). A
  // thread of its own enters the namespace and ends there, so no thread of netprof is ever
  // left in a pod's UTS namespace.
  std::optional<std::string> name;
  UniqueFd uts(open((proc + "/ns/uts").c_str(), O_RDONLY | O_CLOEXEC));
  if (uts.valid()) {
    std::thread reader([&name, fd = uts.get()] {
      if (setns(fd, CLONE_NEWUTS) != 0) return;
      utsname u{};
      if (uname(&u) == 0) name = u.nodename;
    });
    reader.join();
  }
  if (name && !name->empty()) return name;
  // Without CAP_SYS_ADMIN: the file the runtime bind-mounts into each container.
  std::string from_file = first_line(proc + "/root/etc/hostname");
  if (!from_file.empty()) return from_file;
  return std::nullopt;
}

std::string pod_k8s_namespace(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) {
    std::string ns = first_line("/proc/" + std::to_string(pid) +
                                "/root/var/run/secrets/kubernetes.io/serviceaccount/namespace");
    if (!ns.empty()) return ns;
  }
  return {};
}

PodIdentity identify_pod(const PodCgroup& pod, const std::vector<pid_t>& pids) {
  PodIdentity identity;
  identity.uid = pod.name.uid;
  identity.qos = std::string(qos_name(pod.name.qos));
  for (const ContainerCgroupName& container : pod.containers) {
    identity.container_ids.push_back(container.id);
    if (identity.runtime.empty()) identity.runtime = std::string(runtime_name(container.runtime));
  }
  for (pid_t pid : pids) {
    if (auto name = pod_hostname(pid)) {
      identity.name = std::move(*name);
      break;
    }
  }
  identity.k8s_namespace = pod_k8s_namespace(pids);
  return identity;
}

}  // namespace netprof
