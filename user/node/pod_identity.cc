#include "node/pod_identity.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <thread>

#include "base/unique_fd.h"

namespace netprof {
namespace {

std::optional<pid_t> first_pid(const std::string& cgroup_dir) {
  std::ifstream procs(cgroup_dir + "/cgroup.procs");
  long pid = 0;
  if (procs >> pid && pid > 0) return static_cast<pid_t>(pid);
  return std::nullopt;
}

std::string trim_line(std::string text) {
  const size_t newline = text.find('\n');
  if (newline != std::string::npos) text.resize(newline);
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
    text.pop_back();
  return text;
}

std::string proc_dir(pid_t pid) { return "/proc/" + std::to_string(pid); }

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Namespace and pod names are DNS labels/subdomains: lowercase letters, digits, '-' and '.'.
bool is_dns_name(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  for (char c : text)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  return true;
}

}  // namespace

ProcessRole classify_comm(std::string_view comm) {
  while (!comm.empty() && comm.back() == '\n') comm.remove_suffix(1);
  // runc re-executes itself as "runc:[0:PARENT]", "runc:[1:CHILD]", "runc:[2:INIT]" until it
  // execs the container's process; crun and youki keep their own names meanwhile.
  if (starts_with(comm, "runc:") || comm == "runc" || comm == "runc-init" || comm == "crun" ||
      comm == "youki")
    return ProcessRole::kRuntimeInit;
  // The Kubernetes pause image's /pause (also what Docker and CRI-O sandboxes run).
  if (comm == "pause") return ProcessRole::kInfra;
  return ProcessRole::kApp;
}

std::vector<PodProcess> pod_processes(const PodCgroup& pod) {
  std::vector<PodProcess> out;
  auto add = [&out](const std::string& dir) {
    auto pid = first_pid(dir);
    if (!pid) return;
    std::ifstream comm_file(proc_dir(*pid) + "/comm");
    std::string comm;
    if (!std::getline(comm_file, comm)) return;  // exited meanwhile
    out.push_back(PodProcess{*pid, classify_comm(comm)});
  };
  add(pod.dir);
  for (const std::string& dir : pod.container_dirs) add(dir);
  return out;
}

Expected<ino_t> namespace_inode_of(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return errno_error("cannot read " + path, errno);
  return st.st_ino;
}

ino_t namespace_inode(const std::string& path) {
  auto inode = namespace_inode_of(path);
  return inode ? *inode : 0;
}

Expected<PodNetwork> pod_network(const std::vector<PodProcess>& processes,
                                 const std::vector<ino_t>& skip_inodes) {
  if (processes.empty()) return Error{"no process in the pod's cgroup yet"};
  std::optional<Error> last_error;
  std::optional<PodNetwork> in_skipped;
  for (const PodProcess& process : processes) {
    if (process.role == ProcessRole::kRuntimeInit) continue;
    PodNetwork network;
    network.pid = process.pid;
    network.netns_path = proc_dir(process.pid) + "/ns/net";
    auto inode = namespace_inode_of(network.netns_path);
    if (!inode) {  // exited meanwhile, or no ptrace access
      last_error = inode.take_error();
      continue;
    }
    network.netns_inode = *inode;
    if (std::find(skip_inodes.begin(), skip_inodes.end(), network.netns_inode) !=
        skip_inodes.end()) {
      // A runtime's helper can sit in the pod's cgroup before it joins the pod's netns:
      // another process may show the pod's own.
      network.shares_skipped_netns = true;
      if (!in_skipped) in_skipped = network;
      continue;
    }
    return network;
  }
  if (in_skipped) return *in_skipped;
  if (last_error)
    return Error{"cannot read the network namespace of the pod's processes: " +
                 last_error->message};
  return Error{"the runtime is still starting the pod's processes"};
}

std::optional<std::string> uts_nodename(const std::string& uts_path) {
  // A thread of its own enters the namespace and ends there, so no thread of netprof is
  // ever left in another UTS namespace.
  std::optional<std::string> name;
  UniqueFd uts(open(uts_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!uts.valid()) return std::nullopt;
  std::thread reader([&name, fd = uts.get()] {
    if (setns(fd, CLONE_NEWUTS) != 0) return;
    utsname u{};
    if (uname(&u) == 0) name = u.nodename;
  });
  reader.join();
  if (name && name->empty()) return std::nullopt;
  return name;
}

Expected<std::string> read_file_in_root(const std::string& root, const std::string& path,
                                        size_t max_bytes) {
  UniqueFd dir(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return errno_error("cannot open " + root, errno);
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  // Every component, symlinks included, resolves as if `root` were "/": a container cannot
  // point netprof at the node's files. No /proc magic links either.
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const long fd = syscall(SYS_openat2, dir.get(), path.c_str(), &how, sizeof how);
  const std::string what = "cannot read " + path + " in " + root;
  if (fd < 0) return errno_error(what, errno);
  UniqueFd file(static_cast<int>(fd));
  struct stat st {};
  if (fstat(file.get(), &st) != 0) return errno_error(what, errno);
  if (!S_ISREG(st.st_mode)) return Error{what + ": not a file"};
  std::string text(max_bytes, '\0');
  size_t have = 0;
  while (have < max_bytes) {
    const ssize_t n = read(file.get(), text.data() + have, max_bytes - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(what, errno);
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  text.resize(have);
  return text;
}

std::optional<std::string> pod_hostname(pid_t pid) {
  // The kernel's nodename is what the app itself sees (the origin used os.hostname()).
  if (auto name = uts_nodename(proc_dir(pid) + "/ns/uts")) return name;
  // Without CAP_SYS_ADMIN: the file the runtime bind-mounts into each container.
  auto text = read_file_in_root(proc_dir(pid) + "/root", "/etc/hostname", 256);
  if (!text) return std::nullopt;
  std::string name = trim_line(std::move(*text));
  if (name.empty()) return std::nullopt;
  return name;
}

std::string pod_k8s_namespace(const std::vector<PodProcess>& processes) {
  for (const PodProcess& process : processes) {
    if (process.role != ProcessRole::kApp) continue;  // pause and runc init mount no token
    auto text = read_file_in_root(proc_dir(process.pid) + "/root",
                                  "/var/run/secrets/kubernetes.io/serviceaccount/namespace", 256);
    if (!text) continue;
    std::string ns = trim_line(std::move(*text));
    if (is_dns_name(ns)) return ns;
  }
  return {};
}

std::optional<KubeletPodRecord> parse_pod_log_dir(std::string_view dir_name) {
  // Neither a namespace nor a pod name can hold '_' (DNS names), so the split is exact.
  const size_t first = dir_name.find('_');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = dir_name.find('_', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (dir_name.find('_', second + 1) != std::string_view::npos) return std::nullopt;
  KubeletPodRecord record{std::string(dir_name.substr(0, first)),
                          std::string(dir_name.substr(first + 1, second - first - 1)),
                          std::string(dir_name.substr(second + 1))};
  if (!is_dns_name(record.k8s_namespace) || !is_dns_name(record.name)) return std::nullopt;
  // The UID as the cgroup names it: a UUID, or 32 hex digits for static pods.
  auto as_cgroup = parse_pod_cgroup("pod" + record.uid, "kubepods");
  if (!as_cgroup || as_cgroup->uid != record.uid) return std::nullopt;
  return record;
}

Expected<KubeletPods> read_kubelet_pods(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return errno_error("cannot read " + dir, errno);
  KubeletPods pods;
  while (const dirent* entry = readdir(d)) {
    if (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN) continue;
    if (auto record = parse_pod_log_dir(entry->d_name)) {
      const std::string uid = record->uid;
      pods[uid] = std::move(*record);
    }
  }
  closedir(d);
  return pods;
}

PodIdentity identify_pod(const PodCgroup& pod, const std::vector<PodProcess>& processes,
                         const KubeletPods& kubelet, const std::string& node_hostname) {
  PodIdentity identity;
  identity.uid = pod.name.uid;
  identity.qos = std::string(qos_name(pod.name.qos));
  for (const ContainerCgroupName& container : pod.containers) {
    identity.container_ids.push_back(container.id);
    if (identity.runtime.empty()) identity.runtime = std::string(runtime_name(container.runtime));
  }
  if (auto it = kubelet.find(pod.name.uid); it != kubelet.end()) {
    identity.name = it->second.name;
    identity.k8s_namespace = it->second.k8s_namespace;
    identity.name_source = identity.namespace_source = std::string(kSourceKubelet);
    return identity;
  }
  // Only the app's own processes: the runtime's init still has the node's hostname, and
  // the pause process's mount namespace has no service-account token.
  for (const PodProcess& process : processes) {
    if (process.role != ProcessRole::kApp) continue;
    auto name = pod_hostname(process.pid);
    if (!name || *name == node_hostname) continue;
    identity.name = std::move(*name);
    identity.name_source = std::string(kSourceHostname);
    break;
  }
  identity.k8s_namespace = pod_k8s_namespace(processes);
  if (!identity.k8s_namespace.empty())
    identity.namespace_source = std::string(kSourceServiceAccount);
  return identity;
}

}  // namespace netprof
