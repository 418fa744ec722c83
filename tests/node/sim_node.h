// A simulated Kubernetes node for `netprof node`: a cgroup tree laid out like the kubelet's
// under a private root below the real cgroup2 mount, and pods in it, each a netns (with a
// veth to a client netns), a container cgroup and a real HTTP server process (python3
// http.server) that lives in both and has its own hostname in its own UTS namespace.
// Everything is removed by the destructors, also when a test fails half-way.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "pod_fixture.h"

namespace netprof::test {

enum class SimLayout { kSystemdContainerd, kCgroupfs, kSystemdCrio };

class SimNode;

class SimPod {
 public:
  ~SimPod();  // kills the server, removes its cgroups
  const std::string& uid() const { return uid_; }
  const std::string& hostname() const { return hostname_; }
  const std::string& pod_dir() const { return pod_dir_; }
  const TestPod& net() const { return *net_; }
  SocketAddress server_address() const;  // pod IPv4 : kPort
  // Ends the pod as a kubelet would: the processes die, then the cgroups go.
  void remove();

  static constexpr uint16_t kPort = 8080;

 private:
  friend class SimNode;
  SimPod() = default;
  bool make_dirs(const std::string& root, SimLayout layout, std::string& error);
  bool join_cgroup(std::string& error);
  std::unique_ptr<TestPod> net_;
  std::string uid_, hostname_, qos_, pod_dir_, container_dir_;
  std::vector<std::string> created_dirs_;  // in creation order
  pid_t server_ = -1;
};

class SimNode {
 public:
  static std::unique_ptr<SimNode> create(std::string& error);
  ~SimNode();  // removes the whole tree below root()
  const std::string& root() const { return root_; }
  // A pod whose HTTP server answers on kPort once this returns. The server is python3's
  // http.server (404 for every path), or with `tiny` a forked copy of this process that
  // answers every request with an empty 404 (for many pods: a few hundred KiB each).
  std::unique_ptr<SimPod> add_pod(const std::string& hostname, const std::string& uid,
                                  SimLayout layout, std::string& error, bool tiny = false);
  // A hostNetwork pod: a process in the test's own (the "node's") network namespace.
  std::unique_ptr<SimPod> add_host_network_pod(const std::string& uid, std::string& error);

 private:
  SimNode() = default;
  std::string root_;
};

// `netprof node` as a child process: stderr to a log file, reports to a file.
class NodeProcess {
 public:
  NodeProcess(const std::string& cgroup_root, const std::vector<std::string>& extra_args);
  ~NodeProcess();  // SIGKILL if still running
  std::string log() const;
  std::string report_text() const;
  const std::string& report_path() const { return report_path_; }
  bool signal(int sig);
  // Waits for the exit; returns the exit status (-1: killed by a signal or timed out).
  int wait_exit(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_, report_path_;
};

// The BPF objects a process holds, from the kernel's own accounting (/proc/PID/fdinfo of its
// bpf-map and bpf-prog fds, each object counted once): what `bpftool map/prog show` reports
// as memlock, summed.
struct BpfFootprint {
  size_t maps = 0;
  size_t programs = 0;
  uint64_t map_memlock = 0;   // bytes
  uint64_t prog_memlock = 0;  // bytes
  uint64_t memlock() const { return map_memlock + prog_memlock; }
};
BpfFootprint bpf_footprint(pid_t pid);
// Resident memory of a process (VmRSS), bytes.
uint64_t resident_bytes(pid_t pid);

// Programs attached to a netns for sk_lookup, or to a cgroup directory for `type`.
size_t sk_lookup_programs(const Netns& netns);
size_t cgroup_programs(const std::string& dir, int attach_type);

}  // namespace netprof::test
