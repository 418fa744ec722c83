// One `netprof node` process, many pods (20 simulated ones: netns + kubepods cgroup + a small
// HTTP server each) on one loaded BPF object: every pod's traffic is steered and counted under
// that pod; the process's BPF maps do not grow with pods and its programs grow by exactly the
// pod's small sk_lookup copy (kernel accounting from /proc/PID/fdinfo); removing one pod leaves
// the others steered; kill -9 leaves no link on any pod.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim_node.h"

namespace netprof::test {
namespace {

using nlohmann::json;

constexpr int kPods = 20;
constexpr auto kPatience = std::chrono::seconds(60);
// Goal of issue #10: at most this much more locked kernel memory per attached pod.
constexpr uint64_t kPerPodBudget = 256 * 1024;

std::string uid_of(int i) {
  char uid[64];
  std::snprintf(uid, sizeof uid, "5ca1e000-0000-4000-8000-%012d", i);
  return uid;
}

size_t attached_count(const NodeProcess& node) {
  std::istringstream log(node.log());
  size_t count = 0;
  for (std::string line; std::getline(log, line);)
    if (line.find(": attached") != std::string::npos) ++count;
  return count;
}

json report_of(const NodeProcess& node) {
  json report = json::parse(node.report_text(), nullptr, false);
  return report.is_discarded() ? json::object() : report;
}

// Requests counted under the pod with `uid` for `route` (0 when not in the report yet).
int64_t requests(const json& report, const std::string& uid, const std::string& route) {
  if (!report.contains("pods")) return 0;
  for (const json& pod : report["pods"]) {
    if (pod.value("uid", "") != uid || !pod.contains("routes")) continue;
    for (const json& r : pod["routes"])
      if (r.value("route", "") == route) return r.value("count", int64_t{0});
  }
  return 0;
}

std::string get(const SimPod& pod, const std::string& path) {
  return exchange_in(pod.net().client(), pod.net().home(), pod.server_address(), get_request(path));
}

TEST(NodeScale, ManyPodsShareOneBpfObjectAndStayIndependent) {
  NETPROF_NEED_BPF();
  std::string error;
  auto node = SimNode::create(error);
  ASSERT_TRUE(node) << error;
  std::vector<std::unique_ptr<SimPod>> pods;
  auto add = [&](int i) {
    auto pod = node->add_pod("scale-" + std::to_string(i), uid_of(i), static_cast<SimLayout>(i % 3),
                             error, /*tiny=*/true);
    EXPECT_TRUE(pod) << error;
    if (pod) pods.push_back(std::move(pod));
    return pods.size() == static_cast<size_t>(i + 1);
  };
  ASSERT_TRUE(add(0));
  NodeProcess netprof(node->root(), {"--admin", "off"});
  ASSERT_TRUE(wait_until([&] { return attached_count(netprof) == 1; }, kPatience)) << netprof.log();
  const BpfFootprint one = bpf_footprint(netprof.pid());
  ASSERT_GT(one.maps, 0u);

  for (int i = 1; i < kPods; ++i) ASSERT_TRUE(add(i));
  ASSERT_TRUE(wait_until([&] { return attached_count(netprof) == kPods; }, kPatience))
      << netprof.log();
  const BpfFootprint all = bpf_footprint(netprof.pid());
  // One object for the node: the same maps; per pod only its sk_lookup copy.
  EXPECT_EQ(all.maps, one.maps);
  EXPECT_EQ(all.programs, one.programs + (kPods - 1));
  // Map memory grows only by the pods' entries (SOCKHASH elements are allocated on update).
  const uint64_t per_pod = (all.memlock() - one.memlock()) / (kPods - 1);
  EXPECT_LE(per_pod, kPerPodBudget) << "kernel memory per pod";
  std::printf(
      "BPF objects: %zu maps, %zu programs, %.1f MiB locked with 1 pod; %zu programs, "
      "%.1f MiB with %d pods (%.1f KiB per pod)\n",
      one.maps, one.programs, static_cast<double>(one.memlock()) / 1048576.0, all.programs,
      static_cast<double>(all.memlock()) / 1048576.0, kPods, static_cast<double>(per_pod) / 1024.0);
  for (const auto& pod : pods) EXPECT_EQ(sk_lookup_programs(pod->net().pod()), 1u);

  // Each pod's request lands under that pod, and under no other.
  for (int i = 0; i < kPods; ++i)
    EXPECT_NE(get(*pods[i], "/p" + std::to_string(i)).find(" 404 "), std::string::npos);
  ASSERT_TRUE(wait_until(
      [&] {
        const json r = report_of(netprof);
        for (int i = 0; i < kPods; ++i)
          if (requests(r, uid_of(i), "/p" + std::to_string(i)) != 1) return false;
        return true;
      },
      kPatience))
      << netprof.report_text();
  {
    const json r = report_of(netprof);
    for (int i = 0; i < kPods; ++i)
      EXPECT_EQ(requests(r, uid_of((i + 1) % kPods), "/p" + std::to_string(i)), 0) << i;
  }

  // One pod goes: its attachments go, the others stay steered.
  const Netns& gone_netns = pods[7]->net().pod();
  const std::string gone_dir = pods[7]->pod_dir();
  pods[7]->remove();
  ASSERT_TRUE(wait_until(
      [&] { return netprof.log().find("uid " + uid_of(7) + ": detached") != std::string::npos; },
      kPatience))
      << netprof.log();
  EXPECT_EQ(sk_lookup_programs(gone_netns), 0u);
  EXPECT_EQ(bpf_footprint(netprof.pid()).programs, all.programs - 1);
  for (int i = 0; i < kPods; ++i) {
    if (i == 7) continue;
    EXPECT_EQ(sk_lookup_programs(pods[i]->net().pod()), 1u) << i;
    EXPECT_NE(get(*pods[i], "/after").find(" 404 "), std::string::npos) << i;
  }
  ASSERT_TRUE(wait_until(
      [&] {
        const json r = report_of(netprof);
        for (int i = 0; i < kPods; ++i)
          if (i != 7 && requests(r, uid_of(i), "/after") != 1) return false;
        return true;
      },
      kPatience))
      << netprof.report_text();

  // kill -9: every link dies with the process; traffic goes straight to the apps.
  ASSERT_TRUE(netprof.signal(SIGKILL));
  EXPECT_EQ(netprof.wait_exit(kPatience), -1);
  for (int i = 0; i < kPods; ++i) {
    if (i == 7) continue;
    EXPECT_TRUE(wait_until([&] { return sk_lookup_programs(pods[i]->net().pod()) == 0; },
                           std::chrono::seconds(5)))
        << i;
    EXPECT_EQ(cgroup_programs(pods[i]->pod_dir(), BPF_CGROUP_SOCK_OPS), 0u) << i;
    EXPECT_EQ(cgroup_programs(pods[i]->pod_dir(), BPF_CGROUP_INET4_CONNECT), 0u) << i;
    EXPECT_NE(get(*pods[i], "/direct").find(" 404 "), std::string::npos) << i;
  }
}

}  // namespace
}  // namespace netprof::test
