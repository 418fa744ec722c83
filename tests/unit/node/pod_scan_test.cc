// Walking a node's cgroup tree, on a directory tree made like one (names are all that count):
// pods of both drivers and every QoS level are found, with their containers; other
// directories are neither reported nor walked.
#include "node/pod_scan.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace netprof {
namespace {

namespace fs = std::filesystem;

class PodScanTest : public testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/netprof-podscan-XXXXXX";
    ASSERT_NE(mkdtemp(name), nullptr);
    root_ = name;
  }
  void TearDown() override { fs::remove_all(root_); }
  void dir(const std::string& relative) { fs::create_directories(root_ + "/" + relative); }
  std::string root_;
};

const std::string kId(64, 'c');

TEST_F(PodScanTest, FindsPodsOfEveryLayoutAndTheirContainers) {
  dir("kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod11111111_2222_3333_4444_555555555555.slice/cri-containerd-" +
      kId + ".scope");
  dir("kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod11111111_2222_3333_4444_555555555555.slice/crio-conmon-" +
      kId + ".scope");
  dir("kubepods.slice/kubepods-pod22222222_2222_3333_4444_555555555555.slice/docker-" + kId +
      ".scope");
  dir("kubepods/besteffort/pod33333333-2222-3333-4444-555555555555/" + kId);
  dir("kubepods/besteffort/pod33333333-2222-3333-4444-555555555555/" + std::string(64, 'd'));
  // Not pods: a pod-looking name outside the kubepods tree, and a deep non-kube subtree.
  dir("system.slice/kubepods-pod44444444_2222_3333_4444_555555555555.slice");
  dir("user.slice/kube-lookalike/pod55555555-2222-3333-4444-555555555555");

  const PodScan scan = scan_pod_cgroups(root_);
  ASSERT_EQ(scan.pods.size(), 3u);
  EXPECT_EQ(scan.pods[0].name.uid, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(scan.pods[0].name.qos, QosClass::kBurstable);
  ASSERT_EQ(scan.pods[0].containers.size(), 1u);  // conmon is not a container
  EXPECT_EQ(scan.pods[0].containers[0].runtime, ContainerRuntime::kContainerd);
  EXPECT_EQ(scan.pods[1].name.qos, QosClass::kGuaranteed);
  EXPECT_EQ(scan.pods[1].containers[0].runtime, ContainerRuntime::kDocker);
  EXPECT_EQ(scan.pods[2].name.qos, QosClass::kBestEffort);
  EXPECT_EQ(scan.pods[2].name.driver, CgroupDriver::kCgroupfs);
  EXPECT_EQ(scan.pods[2].containers.size(), 2u);
  EXPECT_EQ(scan.pods[2].container_dirs.size(), 2u);
  EXPECT_EQ(scan.pods[2].dir,
            root_ + "/kubepods/besteffort/pod33333333-2222-3333-4444-555555555555");

  // Watched: the root, the kube levels and the pods, not system.slice or user.slice.
  auto watched = [&](const std::string& relative) {
    const std::string path = relative.empty() ? root_ : root_ + "/" + relative;
    return std::find(scan.watch_dirs.begin(), scan.watch_dirs.end(), path) != scan.watch_dirs.end();
  };
  EXPECT_TRUE(watched(""));
  EXPECT_TRUE(watched("kubepods.slice/kubepods-burstable.slice"));
  EXPECT_TRUE(watched("kubepods/besteffort"));
  EXPECT_TRUE(watched("kubepods/besteffort/pod33333333-2222-3333-4444-555555555555"));
  EXPECT_FALSE(watched("system.slice"));
  EXPECT_FALSE(watched("user.slice"));
}

TEST_F(PodScanTest, EmptyOrMissingRoot) {
  EXPECT_TRUE(scan_pod_cgroups(root_).pods.empty());
  EXPECT_TRUE(scan_pod_cgroups(root_ + "/nonexistent").pods.empty());
}

}  // namespace
}  // namespace netprof
