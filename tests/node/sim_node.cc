#include "sim_node.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/cgroup_v2.h"
#include "http/message_reader.h"

namespace netprof::test {
namespace {

void all_dirs_below(const std::string& dir, std::vector<std::string>& out) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (e->d_type != DT_DIR || name == "." || name == "..") continue;
    out.push_back(dir + "/" + name);
    all_dirs_below(out.back(), out);
  }
  closedir(d);
}

// rmdir of a cgroup fails while it has processes: kill them first and retry briefly.
void remove_cgroup(const std::string& dir) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    std::ifstream procs(dir + "/cgroup.procs");
    for (long pid = 0; procs >> pid;) kill(static_cast<pid_t>(pid), SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "cannot remove cgroup " << dir << ": " << std::strerror(errno);
}

void remove_tree(const std::string& root) {
  std::vector<std::string> dirs;
  all_dirs_below(root, dirs);
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) {
    return std::count(a.begin(), a.end(), '/') > std::count(b.begin(), b.end(), '/');
  });
  for (const std::string& dir : dirs) remove_cgroup(dir);
  remove_cgroup(root);
}

// Trees of earlier runs that were killed before their destructors ran ("netprof-t-PID-N-node"
// with PID gone): removed, so that crashed runs do not pile up cgroups.
void remove_stale_trees(const std::string& mount) {
  DIR* d = opendir(mount.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    long pid = 0;
    if (name.rfind("netprof-t-", 0) != 0 || name.size() < 5 ||
        name.compare(name.size() - 5, 5, "-node") != 0)
      continue;
    if (std::sscanf(name.c_str(), "netprof-t-%ld-", &pid) == 1 && pid > 0 &&
        kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      stale.push_back(mount + "/" + name);
  }
  closedir(d);
  for (const std::string& root : stale) remove_tree(root);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::unique_ptr<SimNode> SimNode::create(std::string& error) {
  auto mount = cgroup2_mount_point();
  if (!mount) {
    error = mount.error();
    return nullptr;
  }
  remove_stale_trees(*mount);
  std::unique_ptr<SimNode> node(new SimNode());
  node->root_ = *mount + "/" + unique_name() + "-node";
  if (mkdir(node->root_.c_str(), 0755) != 0) {
    error = "mkdir " + node->root_ + ": " + std::strerror(errno);
    node->root_.clear();
    return nullptr;
  }
  return node;
}

SimNode::~SimNode() {
  if (!root_.empty()) remove_tree(root_);
}

// The tiny server: one connection at a time, reads a request head, answers 404, closes.
[[noreturn]] static void serve_tiny(uint16_t port) {
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 || listen(fd, 64) != 0)
    _exit(124);
  static const char kAnswer[] =
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  while (true) {
    const int client = accept(fd, nullptr, nullptr);
    if (client < 0) continue;
    HttpMessageReader reader(HttpMessageKind::kRequest, {}, /*head_only=*/true);
    std::string carry;
    (void)read_http_message(client, reader, carry, 10'000);
    if (write(client, kAnswer, sizeof kAnswer - 1) < 0) {
    }
    close(client);
  }
}

std::unique_ptr<SimPod> SimNode::add_pod(const std::string& hostname, const std::string& uid,
                                         SimLayout layout, std::string& error, bool tiny) {
  std::unique_ptr<SimPod> pod(new SimPod());
  pod->uid_ = uid;
  pod->hostname_ = hostname;
  pod->net_ = TestPod::create(error);
  if (!pod->net_) return nullptr;

  if (!pod->make_dirs(root_, layout, error)) return nullptr;

  // Everything the child needs is prepared before fork(): it only makes system calls.
  const std::string netns = pod->net_->pod_path();
  const std::string port = std::to_string(SimPod::kPort);
  const char* argv[] = {"python3", "-m", "http.server", port.c_str(), nullptr};
  const pid_t child = fork();
  if (child < 0) {
    error = std::string("fork: ") + std::strerror(errno);
    return nullptr;
  }
  if (child == 0) {
    const int ns = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(121);
    if (unshare(CLONE_NEWUTS) != 0 || sethostname(hostname.data(), hostname.size()) != 0)
      _exit(122);
    const int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (chdir("/var/empty") != 0 && chdir("/") != 0) _exit(123);
    if (tiny) serve_tiny(SimPod::kPort);
    execvp("python3", const_cast<char* const*>(argv));
    _exit(127);
  }
  pod->server_ = child;
  const SocketAddress to = pod->server_address();
  const bool up = wait_until(
      [&] {
        return !exchange_in(pod->net().client(), pod->net().home(), to, get_request("/")).empty();
      },
      std::chrono::seconds(15));
  if (!up) {
    int status = 0;
    const pid_t done = waitpid(child, &status, WNOHANG);
    error = "the HTTP server of pod " + hostname + " did not come up" +
            (done == child ? " (exit status " + std::to_string(WEXITSTATUS(status)) + ")" : "");
    return nullptr;
  }
  // Only a serving app joins the pod's cgroup, so netprof (which finds pods through their
  // processes) never steers a connection before the app listens. See the report: a steered
  // connection the relay closes leaves a TIME_WAIT on the app's port without SO_REUSEADDR.
  if (!pod->join_cgroup(error)) return nullptr;
  return pod;
}

bool SimPod::make_dirs(const std::string& root, SimLayout layout, std::string& error) {
  const std::string& uid = uid_;
  std::string escaped = uid;
  std::replace(escaped.begin(), escaped.end(), '-', '_');
  std::string hex = uid;
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  const std::string container_id = hex + hex;  // 64 hex digits, like a real id
  std::vector<std::string> parts;
  switch (layout) {
    case SimLayout::kSystemdContainerd:
      parts = {"kubepods.slice", "kubepods-burstable.slice",
               "kubepods-burstable-pod" + escaped + ".slice",
               "cri-containerd-" + container_id + ".scope"};
      break;
    case SimLayout::kCgroupfs:
      parts = {"kubepods", "besteffort", "pod" + uid, container_id};
      break;
    case SimLayout::kSystemdCrio:
      parts = {"kubepods.slice", "kubepods-pod" + escaped + ".slice",
               "crio-" + container_id + ".scope"};
      break;
  }
  std::string dir = root;
  for (const std::string& part : parts) {
    dir += "/" + part;
    if (mkdir(dir.c_str(), 0755) == 0) {
      created_dirs_.push_back(dir);
    } else if (errno != EEXIST) {
      error = "mkdir " + dir + ": " + std::strerror(errno);
      return false;
    }
  }
  container_dir_ = dir;
  pod_dir_ = dir.substr(0, dir.rfind('/'));

  return true;
}

bool SimPod::join_cgroup(std::string& error) {
  std::ofstream procs(container_dir_ + "/cgroup.procs");
  procs << server_ << std::flush;
  if (!procs) error = "cannot move pid " + std::to_string(server_) + " into " + container_dir_;
  return static_cast<bool>(procs);
}

std::unique_ptr<SimPod> SimNode::add_host_network_pod(const std::string& uid, std::string& error) {
  std::unique_ptr<SimPod> pod(new SimPod());
  pod->uid_ = uid;
  if (!pod->make_dirs(root_, SimLayout::kCgroupfs, error)) return nullptr;
  const pid_t child = fork();
  if (child == 0) {
    const char* argv[] = {"sleep", "600", nullptr};
    execvp("sleep", const_cast<char* const*>(argv));
    _exit(127);
  }
  pod->server_ = child;
  if (!pod->join_cgroup(error)) return nullptr;
  return pod;
}

SocketAddress SimPod::server_address() const {
  return address(net_->pod_ip4 + ":" + std::to_string(kPort));
}

void SimPod::remove() {
  if (server_ > 0) {
    kill(server_, SIGKILL);
    waitpid(server_, nullptr, 0);
    server_ = -1;
  }
  // Only this pod's own directories; shared levels (kubepods.slice) belong to the node.
  for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) {
    if (it->size() < pod_dir_.size()) continue;
    remove_cgroup(*it);
  }
  created_dirs_.erase(
      std::remove_if(created_dirs_.begin(), created_dirs_.end(),
                     [&](const std::string& d) { return d.size() >= pod_dir_.size(); }),
      created_dirs_.end());
}

SimPod::~SimPod() { remove(); }

NodeProcess::NodeProcess(const std::string& cgroup_root, const std::vector<std::string>& extra) {
  const std::string base = "/tmp/" + unique_name();
  log_path_ = base + "-node.log";
  report_path_ = base + "-report.json";
  std::vector<std::string> args = {NETPROF_BINARY, "node", "--cgroup-root", cgroup_root,
                                   "--inbound-ports", std::to_string(SimPod::kPort),
                                   "--report-file", report_path_, "--report-interval", "0.3",
                                   "--rescan-interval", "1",
                                   // PID 1 of a test machine may hide its namespaces; the
                                   // test runs in the node's netns, so netprof's own is it.
                                   "--host-netns", "/proc/self/ns/net"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    const int null = open("/dev/null", O_RDWR);
    const int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(null, 0);
    dup2(null, 1);
    dup2(log, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
}

NodeProcess::~NodeProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::remove(log_path_.c_str());
  std::remove(report_path_.c_str());
}

std::string NodeProcess::log() const { return read_file(log_path_); }
std::string NodeProcess::report_text() const { return read_file(report_path_); }

bool NodeProcess::signal(int sig) { return pid_ > 0 && kill(pid_, sig) == 0; }

int NodeProcess::wait_exit(std::chrono::milliseconds timeout) {
  int status = 0;
  const bool exited = wait_until([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
  if (!exited) return -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

BpfFootprint bpf_footprint(pid_t pid) {
  BpfFootprint footprint;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return footprint;
  std::vector<std::pair<char, uint64_t>> seen;  // ('m' or 'p', id)
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream info(dir + "/" + e->d_name);
    uint64_t memlock = 0, id = 0;
    char kind = 0;
    for (std::string line; std::getline(info, line);) {
      if (line.rfind("memlock:", 0) == 0) memlock = std::strtoull(line.c_str() + 8, nullptr, 10);
      if (line.rfind("map_id:", 0) == 0) {
        kind = 'm';
        id = std::strtoull(line.c_str() + 7, nullptr, 10);
      }
      if (line.rfind("prog_id:", 0) == 0) {
        kind = 'p';
        id = std::strtoull(line.c_str() + 8, nullptr, 10);
      }
    }
    if (kind == 0 || std::find(seen.begin(), seen.end(), std::pair{kind, id}) != seen.end())
      continue;
    seen.emplace_back(kind, id);
    if (kind == 'm') {
      ++footprint.maps;
      footprint.map_memlock += memlock;
    } else {
      ++footprint.programs;
      footprint.prog_memlock += memlock;
    }
  }
  closedir(d);
  return footprint;
}

uint64_t resident_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}

size_t sk_lookup_programs(const Netns& netns) {
  __u32 ids[64];
  __u32 count = 64;
  __u32 flags = 0;
  if (bpf_prog_query(netns.fd(), BPF_SK_LOOKUP, 0, &flags, ids, &count) != 0) return 0;
  return count;
}

size_t cgroup_programs(const std::string& dir, int attach_type) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  __u32 ids[64];
  __u32 count = 64;
  __u32 flags = 0;
  const int rc =
      bpf_prog_query(fd, static_cast<bpf_attach_type>(attach_type), 0, &flags, ids, &count);
  close(fd);
  return rc == 0 ? count : 0;
}

}  // namespace netprof::test
