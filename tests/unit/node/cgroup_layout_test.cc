// Pod and container directories of every kubelet layout, on literal paths as real nodes have
// them (systemd and cgroupfs drivers; containerd, CRI-O and Docker).
#include "node/cgroup_layout.h"

#include <gtest/gtest.h>

namespace netprof {
namespace {

constexpr const char* kUid = "8d7c6b5a-1234-4f00-9abc-0123456789ab";
constexpr const char* kId = "3f2a9c1e0b4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f";

struct LayoutCase {
  const char* what;
  std::string path;
  QosClass qos;
  CgroupDriver driver;
  ContainerRuntime runtime;
  std::string pod_dir;
};

class PodPathTest : public testing::TestWithParam<LayoutCase> {};

TEST_P(PodPathTest, FindsUidQosAndContainer) {
  const LayoutCase& c = GetParam();
  auto parsed = parse_pod_path(c.path);
  ASSERT_TRUE(parsed.has_value()) << c.path;
  EXPECT_EQ(parsed->pod.uid, kUid);
  EXPECT_EQ(parsed->pod.qos, c.qos);
  EXPECT_EQ(parsed->pod.driver, c.driver);
  EXPECT_EQ(parsed->pod_dir, c.pod_dir);
  ASSERT_TRUE(parsed->container.has_value()) << c.path;
  EXPECT_EQ(parsed->container->id, kId);
  EXPECT_EQ(parsed->container->runtime, c.runtime);
}

const std::string kIdText = kId;
INSTANTIATE_TEST_SUITE_P(
    AllLayouts, PodPathTest,
    testing::Values(
        LayoutCase{"systemd containerd burstable",
                   "/kubepods.slice/kubepods-burstable.slice/"
                   "kubepods-burstable-pod8d7c6b5a_1234_4f00_9abc_0123456789ab.slice/"
                   "cri-containerd-" +
                       kIdText + ".scope",
                   QosClass::kBurstable, CgroupDriver::kSystemd, ContainerRuntime::kContainerd,
                   "/kubepods.slice/kubepods-burstable.slice/"
                   "kubepods-burstable-pod8d7c6b5a_1234_4f00_9abc_0123456789ab.slice"},
        LayoutCase{"systemd cri-o besteffort",
                   "/kubepods.slice/kubepods-besteffort.slice/"
                   "kubepods-besteffort-pod8d7c6b5a_1234_4f00_9abc_0123456789ab.slice/crio-" +
                       kIdText + ".scope",
                   QosClass::kBestEffort, CgroupDriver::kSystemd, ContainerRuntime::kCrio,
                   "/kubepods.slice/kubepods-besteffort.slice/"
                   "kubepods-besteffort-pod8d7c6b5a_1234_4f00_9abc_0123456789ab.slice"},
        LayoutCase{
            "systemd docker guaranteed",
            "/kubepods.slice/kubepods-pod8d7c6b5a_1234_4f00_9abc_0123456789ab.slice/docker-" +
                kIdText + ".scope",
            QosClass::kGuaranteed, CgroupDriver::kSystemd, ContainerRuntime::kDocker,
            "/kubepods.slice/kubepods-pod8d7c6b5a_1234_4f00_9abc_0123456789ab.slice"},
        LayoutCase{"systemd under a kubelet --cgroup-root (kind)",
                   "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                   "kubelet-kubepods-besteffort-pod8d7c6b5a_1234_4f00_9abc_0123456789ab.slice/"
                   "cri-containerd-" +
                       kIdText + ".scope",
                   QosClass::kBestEffort, CgroupDriver::kSystemd, ContainerRuntime::kContainerd,
                   "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                   "kubelet-kubepods-besteffort-pod8d7c6b5a_1234_4f00_9abc_0123456789ab.slice"},
        LayoutCase{"cgroupfs containerd burstable",
                   "/kubepods/burstable/pod8d7c6b5a-1234-4f00-9abc-0123456789ab/" + kIdText,
                   QosClass::kBurstable, CgroupDriver::kCgroupfs, ContainerRuntime::kUnknown,
                   "/kubepods/burstable/pod8d7c6b5a-1234-4f00-9abc-0123456789ab"},
        LayoutCase{"cgroupfs guaranteed right under kubepods",
                   "/kubepods/pod8d7c6b5a-1234-4f00-9abc-0123456789ab/" + kIdText,
                   QosClass::kGuaranteed, CgroupDriver::kCgroupfs, ContainerRuntime::kUnknown,
                   "/kubepods/pod8d7c6b5a-1234-4f00-9abc-0123456789ab"},
        LayoutCase{"cgroupfs cri-o besteffort",
                   "/kubepods/besteffort/pod8d7c6b5a-1234-4f00-9abc-0123456789ab/crio-" + kIdText,
                   QosClass::kBestEffort, CgroupDriver::kCgroupfs, ContainerRuntime::kCrio,
                   "/kubepods/besteffort/pod8d7c6b5a-1234-4f00-9abc-0123456789ab"},
        LayoutCase{"cgroupfs under a prefix, as the mountinfo-relative /proc/PID/cgroup shows",
                   "/sys/fs/cgroup/kubelet/kubepods/burstable/"
                   "pod8d7c6b5a-1234-4f00-9abc-0123456789ab/" +
                       kIdText,
                   QosClass::kBurstable, CgroupDriver::kCgroupfs, ContainerRuntime::kUnknown,
                   "/sys/fs/cgroup/kubelet/kubepods/burstable/"
                   "pod8d7c6b5a-1234-4f00-9abc-0123456789ab"}),
    [](const testing::TestParamInfo<LayoutCase>& param) {
      return "Case" + std::to_string(param.index);
    });

TEST(PodCgroupName, StaticPodHashUid) {
  // Static (manifest) pods get a 32-hex-digit hash instead of a UUID.
  auto pod = parse_pod_cgroup("kubepods-burstable-pod0f1e2d3c4b5a69788796a5b4c3d2e1f0.slice",
                              "kubepods-burstable.slice");
  ASSERT_TRUE(pod.has_value());
  EXPECT_EQ(pod->uid, "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
  EXPECT_EQ(pod->qos, QosClass::kBurstable);
}

TEST(PodCgroupName, RejectsLookalikes) {
  // QoS slices, other slices, a bad UID, and a cgroupfs "pod" dir outside a QoS level.
  EXPECT_FALSE(parse_pod_cgroup("kubepods-burstable.slice", "kubepods.slice"));
  EXPECT_FALSE(parse_pod_cgroup("kubepods.slice", ""));
  EXPECT_FALSE(parse_pod_cgroup("system-pod8d7c6b5a_1234_4f00_9abc_0123456789ab.slice", ""));
  EXPECT_FALSE(parse_pod_cgroup("kubepods-podnot_a_uid.slice", "kubepods.slice"));
  EXPECT_FALSE(parse_pod_cgroup("kubepods-pod8d7c6b5a_1234_4f00_9abc_0123456789.slice", ""));
  EXPECT_FALSE(parse_pod_cgroup("pod8d7c6b5a-1234-4f00-9abc-0123456789ab", "system.slice"));
  EXPECT_FALSE(parse_pod_cgroup("pod8d7c6b5a-1234-4f00-9abc-0123456789ab.slice", "kubepods"));
  EXPECT_FALSE(parse_pod_cgroup("burstable", "kubepods"));
  // Dashes in the wrong places are not a UUID.
  EXPECT_FALSE(parse_pod_cgroup("pod8d7c6b5a1-234-4f00-9abc-0123456789ab", "kubepods"));
}

TEST(ContainerCgroupName, RuntimesAndNonContainers) {
  const std::string id = kId;
  EXPECT_EQ(parse_container_cgroup("cri-containerd-" + id + ".scope")->runtime,
            ContainerRuntime::kContainerd);
  EXPECT_EQ(parse_container_cgroup("crio-" + id + ".scope")->runtime, ContainerRuntime::kCrio);
  EXPECT_EQ(parse_container_cgroup("docker-" + id + ".scope")->runtime, ContainerRuntime::kDocker);
  EXPECT_EQ(parse_container_cgroup(id)->id, id);
  // CRI-O's conmon is the container monitor, not a container.
  EXPECT_FALSE(parse_container_cgroup("crio-conmon-" + id + ".scope"));
  EXPECT_FALSE(parse_container_cgroup("cri-containerd-" + id.substr(1) + ".scope"));
  EXPECT_FALSE(parse_container_cgroup("cri-containerd-" + id + ".slice"));
  EXPECT_FALSE(parse_container_cgroup("init.scope"));
  EXPECT_FALSE(parse_container_cgroup(id.substr(0, 63) + "g"));
}

TEST(PodPath, NoPodOrPodItself) {
  EXPECT_FALSE(parse_pod_path("/system.slice/containerd.service"));
  EXPECT_FALSE(parse_pod_path("/kubepods.slice/kubepods-burstable.slice"));
  EXPECT_FALSE(parse_pod_path(""));
  auto pod = parse_pod_path("/kubepods/besteffort/pod8d7c6b5a-1234-4f00-9abc-0123456789ab");
  ASSERT_TRUE(pod.has_value());
  EXPECT_EQ(pod->pod.qos, QosClass::kBestEffort);
  EXPECT_FALSE(pod->container.has_value());
}

TEST(Names, QosAndRuntime) {
  EXPECT_EQ(qos_name(QosClass::kBestEffort), "BestEffort");
  EXPECT_EQ(qos_name(QosClass::kGuaranteed), "Guaranteed");
  EXPECT_EQ(runtime_name(ContainerRuntime::kCrio), "cri-o");
  EXPECT_EQ(runtime_name(ContainerRuntime::kUnknown), "");
}

}  // namespace
}  // namespace netprof
