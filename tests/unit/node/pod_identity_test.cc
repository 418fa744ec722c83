// Pod identity on made-up trees: files read inside a container's root resolve symlinks there
// (RESOLVE_IN_ROOT), the kubelet's /var/log/pods record names pods first, and a process that
// is still the runtime's init, a pause process, or a UTS namespace still carrying the node's
// hostname never names one.
#include "node/pod_identity.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace netprof {
namespace {

namespace fs = std::filesystem;

const std::string kUid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

class TreeTest : public testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/netprof-identity-XXXXXX";
    ASSERT_NE(mkdtemp(name), nullptr);
    root_ = name;
  }
  void TearDown() override { fs::remove_all(root_); }
  void file(const std::string &relative, const std::string &text) {
    fs::create_directories(fs::path(root_ + "/" + relative).parent_path());
    std::ofstream(root_ + "/" + relative) << text;
  }
  void link(const std::string &relative, const std::string &target) {
    fs::create_directories(fs::path(root_ + "/" + relative).parent_path());
    fs::create_directory_symlink(target, root_ + "/" + relative);
  }
  std::string root_;
};

TEST(ClassifyComm, RuntimeInitAndPauseAreNotTheApp) {
  EXPECT_EQ(classify_comm("runc:[2:INIT]"), ProcessRole::kRuntimeInit);
  EXPECT_EQ(classify_comm("runc:[1:CHILD]\n"), ProcessRole::kRuntimeInit);
  EXPECT_EQ(classify_comm("crun"), ProcessRole::kRuntimeInit);
  EXPECT_EQ(classify_comm("pause"), ProcessRole::kInfra);
  EXPECT_EQ(classify_comm("busybox"), ProcessRole::kApp);
  EXPECT_EQ(classify_comm("docker-init"),
            ProcessRole::kApp);  // tini runs after setup
  EXPECT_EQ(classify_comm("pauser"), ProcessRole::kApp);
}

TEST_F(TreeTest, ReadsInsideTheRootFollowingItsOwnSymlinks) {
  // Debian images: /var/run -> /run (absolute). Followed in netprof's own root it would
  // leave the container.
  file("run/secrets/kubernetes.io/serviceaccount/namespace", "shop\n");
  link("var/run", "/run");
  auto text = read_file_in_root(root_, "/var/run/secrets/kubernetes.io/serviceaccount/namespace");
  ASSERT_TRUE(text) << text.error();
  EXPECT_EQ(*text, "shop\n");
}

TEST_F(TreeTest, SymlinksCannotLeaveTheRoot) {
  // Both an absolute link and a ../ walk stay inside: /etc/hostname of this machine exists,
  // the root's does not.
  fs::create_directories(root_ + "/etc");
  fs::create_symlink("/etc/hostname", root_ + "/etc/abs");
  fs::create_symlink("../../../../../../../../etc/hostname", root_ + "/etc/rel");
  for (const char *path : {"/etc/abs", "/etc/rel", "/../../etc/hostname"}) {
    auto text = read_file_in_root(root_, path);
    ASSERT_FALSE(text) << path << " escaped the root: " << *text;
    EXPECT_NE(text.error().find("No such file or directory"), std::string::npos) << text.error();
  }
}

TEST_F(TreeTest, ErrorsCarryTheErrno) {
  auto missing_root = read_file_in_root(root_ + "/nope", "/etc/hostname");
  ASSERT_FALSE(missing_root);
  EXPECT_NE(missing_root.error().find("No such file or directory"), std::string::npos);
  fs::create_directories(root_ + "/dir");
  auto directory = read_file_in_root(root_, "/dir");
  ASSERT_FALSE(directory);
  EXPECT_NE(directory.error().find("not a file"), std::string::npos) << directory.error();
  auto inode = namespace_inode_of(root_ + "/nope");
  ASSERT_FALSE(inode);
  EXPECT_NE(inode.error().find("No such file or directory"), std::string::npos);
}

TEST(KubeletRecord, ParsesNamespaceNameAndUid) {
  auto record = parse_pod_log_dir("shop_web-7d9f-abcde_" + kUid);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->k8s_namespace, "shop");
  EXPECT_EQ(record->name, "web-7d9f-abcde");
  EXPECT_EQ(record->uid, kUid);
  // Static pods: the UID is a 32-hex-digit hash.
  auto static_pod = parse_pod_log_dir("kube-system_etcd-node1_" + std::string(32, 'a'));
  ASSERT_TRUE(static_pod);
  EXPECT_EQ(static_pod->name, "etcd-node1");

  EXPECT_FALSE(parse_pod_log_dir("shop_web_" + kUid + "_x"));  // one '_' too many
  EXPECT_FALSE(parse_pod_log_dir("shop_" + kUid));
  EXPECT_FALSE(parse_pod_log_dir("Shop_web_" + kUid));  // not a DNS name
  EXPECT_FALSE(parse_pod_log_dir("shop_web_not-a-uid"));
  EXPECT_FALSE(parse_pod_log_dir("_web_" + kUid));
}

TEST_F(TreeTest, KubeletRecordsByUid) {
  fs::create_directories(root_ + "/shop_web-1_" + kUid + "/web");
  fs::create_directories(root_ + "/kube-system_coredns-x_" + std::string(32, 'b'));
  fs::create_directories(root_ + "/not-a-pod");
  auto pods = read_kubelet_pods(root_);
  ASSERT_TRUE(pods) << pods.error();
  ASSERT_EQ(pods->size(), 2u);
  EXPECT_EQ(pods->at(kUid).name, "web-1");
  EXPECT_EQ(pods->at(std::string(32, 'b')).k8s_namespace, "kube-system");

  auto missing = read_kubelet_pods(root_ + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("No such file or directory"), std::string::npos);
}

// A pod cgroup tree with this test process as the container's process.
PodCgroup made_up_pod(const std::string &root, pid_t pid) {
  PodCgroup pod;
  pod.name = *parse_pod_cgroup("pod" + kUid, "besteffort");
  pod.dir = root + "/kubepods/besteffort/pod" + kUid;
  const std::string id(64, 'e');
  pod.containers.push_back(*parse_container_cgroup(id));
  pod.container_dirs.push_back(pod.dir + "/" + id);
  fs::create_directories(pod.container_dirs[0]);
  std::ofstream(pod.dir + "/cgroup.procs") << "";
  std::ofstream(pod.container_dirs[0] + "/cgroup.procs") << pid << "\n";
  return pod;
}

std::string own_hostname() {
  utsname u{};
  uname(&u);
  return u.nodename;
}

TEST_F(TreeTest, ProcessesOfAPodWithTheirRole) {
  const PodCgroup pod = made_up_pod(root_, getpid());
  const std::vector<PodProcess> processes = pod_processes(pod);
  ASSERT_EQ(processes.size(), 1u);  // the pod's own cgroup is empty
  EXPECT_EQ(processes[0].pid, getpid());
  EXPECT_EQ(processes[0].role, ProcessRole::kApp);
}

TEST_F(TreeTest, KubeletRecordNamesFirst) {
  const PodCgroup pod = made_up_pod(root_, getpid());
  KubeletPods kubelet;
  kubelet[kUid] = KubeletPodRecord{"shop", "web-1", kUid};
  const PodIdentity id = identify_pod(pod, pod_processes(pod), kubelet, "");
  EXPECT_EQ(id.name, "web-1");
  EXPECT_EQ(id.k8s_namespace, "shop");
  EXPECT_EQ(id.name_source, "kubelet");
  EXPECT_EQ(id.namespace_source, "kubelet");
  EXPECT_TRUE(id.settled());
  EXPECT_EQ(id.qos, "BestEffort");
  ASSERT_EQ(id.container_ids.size(), 1u);
}

TEST_F(TreeTest, HostnameOnlyFromTheAppAndNeverTheNodes) {
  const PodCgroup pod = made_up_pod(root_, getpid());
  const std::string mine = own_hostname();
  // The runtime's init and pause never name a pod, whatever their hostname.
  for (ProcessRole role : {ProcessRole::kRuntimeInit, ProcessRole::kInfra}) {
    const PodIdentity id = identify_pod(pod, {PodProcess{getpid(), role}}, {}, "node-1");
    EXPECT_TRUE(id.name.empty()) << id.name;
    EXPECT_EQ(id.name_source, "");
    EXPECT_FALSE(id.settled());
  }
  // This process's UTS namespace holds the node's hostname here: not a pod name.
  const PodIdentity same = identify_pod(pod, {PodProcess{getpid(), ProcessRole::kApp}}, {}, mine);
  EXPECT_TRUE(same.name.empty()) << same.name;
  // Another node name: the hostname is the pod's.
  const PodIdentity named =
      identify_pod(pod, {PodProcess{getpid(), ProcessRole::kApp}}, {}, mine + "-node");
  EXPECT_EQ(named.name, mine);
  EXPECT_EQ(named.name_source, "hostname");
  EXPECT_FALSE(named.settled());  // re-read until the kubelet's record appears
}

TEST(PodNetwork, NotThroughTheRuntimesInit) {
  auto network = pod_network({PodProcess{getpid(), ProcessRole::kRuntimeInit}}, {});
  ASSERT_FALSE(network);
  EXPECT_NE(network.error().find("still starting"), std::string::npos) << network.error();
  auto infra = pod_network({PodProcess{getpid(), ProcessRole::kInfra}}, {});
  ASSERT_TRUE(infra) << infra.error();  // pause holds the pod's netns: good for that
  EXPECT_EQ(infra->pid, getpid());
  auto skipped = pod_network({PodProcess{getpid(), ProcessRole::kApp}},
                             {namespace_inode("/proc/self/ns/net")});
  ASSERT_TRUE(skipped) << skipped.error();
  EXPECT_TRUE(skipped->shares_skipped_netns);
  auto gone = pod_network({PodProcess{999999999, ProcessRole::kApp}}, {});
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().find("No such file or directory"), std::string::npos) << gone.error();
}

}  // namespace
// runc's init sits in the pod's cgroup before it enters the pod's netns: a process of the
// pod in the node's netns must not hide another that is in the pod's own.
TEST(PodNetwork, PrefersAProcessInThePodsOwnNetnsOverOneInTheNodes) {
  if (geteuid() != 0) {
    if (std::getenv("NETPROF_REQUIRE_BPF") != nullptr) FAIL() << "needs root (unshare)";
    GTEST_SKIP() << "needs root: the pod process is made with unshare(CLONE_NEWNET)";
  }
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(1);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  struct Reap {
    pid_t pid;
    ~Reap() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reap{child};
  char c = 0;
  const bool entered = read(ready[0], &c, 1) == 1;
  close(ready[0]);
  ASSERT_TRUE(entered) << "the child could not unshare its netns";

  const ino_t node = namespace_inode("/proc/self/ns/net");
  auto network = pod_network(
      {PodProcess{getpid(), ProcessRole::kApp}, PodProcess{child, ProcessRole::kApp}}, {node});
  ASSERT_TRUE(network) << network.error();
  EXPECT_FALSE(network->shares_skipped_netns);
  EXPECT_EQ(network->pid, child);
  EXPECT_NE(network->netns_inode, node);
}

}  // namespace netprof
