// `netprof node` on a simulated node: pods found in a kubepods-like cgroup tree, each pod's
// traffic steered, counted and attributed to the right pod (name from its hostname, UID and
// QoS from its cgroup path); a pod added and one removed while it runs; a gone pod's stats
// expire; nothing left attached after SIGTERM, nor after kill -9.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "sim_node.h"

namespace netprof::test {
namespace {

using nlohmann::json;

constexpr const char* kUidA = "0a1b2c3d-0000-4000-8000-00000000000a";
constexpr const char* kUidB = "0a1b2c3d-0000-4000-8000-00000000000b";
constexpr const char* kUidC = "0a1b2c3d-0000-4000-8000-00000000000c";
constexpr const char* kUidHost = "0a1b2c3d-0000-4000-8000-0000000000dd";
constexpr auto kPatience = std::chrono::seconds(20);

json report_of(const NodeProcess& node) {
  json report = json::parse(node.report_text(), nullptr, false);
  return report.is_discarded() ? json::object() : report;
}

// The route entry for `path`, or null.
json route_of(const json& report, const std::string& path) {
  if (!report.contains("routes")) return nullptr;
  for (const json& route : report["routes"])
    if (route.value("route", "") == path) return route;
  return nullptr;
}

// A number field of an object that may be null (route or pod not in the report yet): 0.
int64_t field(const json& object, const char* name) {
  return object.is_object() ? object.value(name, int64_t{0}) : 0;
}

json pod_of(const json& report, const std::string& uid) {
  if (!report.contains("pods")) return nullptr;
  for (const json& pod : report["pods"])
    if (pod.value("uid", "") == uid) return pod;
  return nullptr;
}

// netprof logs "pod NAME uid UID QOS: attached, ..." once a pod's interception is in place.
bool attached(const NodeProcess& node, const std::string& uid) {
  std::istringstream log(node.log());
  for (std::string line; std::getline(log, line);)
    if (line.find("uid " + uid + " ") != std::string::npos &&
        line.find(": attached") != std::string::npos)
      return true;
  return false;
}

// A loopback port nobody listens on now (for the admin API of the netprof under test).
uint16_t free_port() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof in;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof in) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&in), &length) != 0)
    return 0;
  return ntohs(in.sin_port);
}

std::string metrics(const Netns& home, uint16_t port) {
  return exchange_in(home, home, address("127.0.0.1:" + std::to_string(port)),
                     "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

std::string pod_labels(const char* name, const char* uid) {
  return std::string("k8s_pod_name=\"") + name + "\",k8s_pod_uid=\"" + uid + "\"";
}

// Some series line of `route` carries the pod's labels.
bool has_series(const std::string& metrics_text, const std::string& route, const char* name,
                const char* uid) {
  std::istringstream lines(metrics_text);
  for (std::string line; std::getline(lines, line);)
    if (line.find("http_route=\"" + route + "\"") != std::string::npos &&
        line.find(pod_labels(name, uid)) != std::string::npos)
      return true;
  return false;
}

std::string get(const SimPod& pod, const std::string& path) {
  return exchange_in(pod.net().client(), pod.net().home(), pod.server_address(), get_request(path));
}

class NodeSimTest : public testing::Test {
 protected:
  void SetUp() override {
    NETPROF_NEED_BPF();
    if (run("command -v python3") != 0) GTEST_SKIP() << "python3 not installed";
    std::string error;
    node_ = SimNode::create(error);
    ASSERT_TRUE(node_) << error;
  }
  std::unique_ptr<SimPod> add(const std::string& name, const std::string& uid, SimLayout layout) {
    std::string error;
    auto pod = node_->add_pod(name, uid, layout, error);
    EXPECT_TRUE(pod) << error;
    return pod;
  }
  std::unique_ptr<SimNode> node_;
};

TEST_F(NodeSimTest, FollowsPodsAttributesStatsAndDetachesCleanly) {
  auto alpha = add("web-alpha", kUidA, SimLayout::kSystemdContainerd);
  auto bravo = add("web-bravo", kUidB, SimLayout::kCgroupfs);
  ASSERT_TRUE(alpha && bravo);
  std::string error;
  auto host_network = node_->add_host_network_pod(kUidHost, error);
  ASSERT_TRUE(host_network) << error;
  const uint16_t admin = free_port();
  ASSERT_NE(admin, 0);
  NodeProcess netprof(node_->root(), {"--expire-after", "3", "--admin",
                                      "127.0.0.1:" + std::to_string(admin)});
  ASSERT_TRUE(
      wait_until([&] { return attached(netprof, kUidA) && attached(netprof, kUidB); }, kPatience))
      << netprof.log();
  EXPECT_GE(sk_lookup_programs(alpha->net().pod()), 1u);
  EXPECT_GE(sk_lookup_programs(bravo->net().pod()), 1u);
  // A hostNetwork pod shares the node's netns: attaching there would steer the node's own
  // traffic, so it is skipped (and said so) once it has stayed there for
  // NodeAgent::kHostNetworkSettle.
  EXPECT_TRUE(wait_until(
      [&] {
        return netprof.log().find("pod " + std::string(kUidHost) +
                                  ": not attached: shares the node's") != std::string::npos;
      },
      kPatience))
      << netprof.log();
  EXPECT_FALSE(attached(netprof, kUidHost));

  EXPECT_NE(get(*alpha, "/alpha").find(" 404 "), std::string::npos);
  EXPECT_NE(get(*bravo, "/bravo").find(" 404 "), std::string::npos);

  // A pod that appears while netprof runs (inotify or the rescan finds it).
  auto charlie = add("web-charlie", kUidC, SimLayout::kSystemdCrio);
  ASSERT_TRUE(charlie) << netprof.log();
  ASSERT_TRUE(wait_until([&] { return attached(netprof, kUidC); }, kPatience)) << netprof.log();
  EXPECT_NE(get(*charlie, "/charlie").find(" 404 "), std::string::npos);
  EXPECT_NE(get(*charlie, "/charlie").find(" 404 "), std::string::npos);

  // Every route counted under the right pod, named by its hostname.
  ASSERT_TRUE(wait_until(
      [&] {
        const json r = report_of(netprof);
        return !route_of(r, "/alpha").is_null() && !route_of(r, "/bravo").is_null() &&
               field(route_of(r, "/charlie"), "count") == 2;
      },
      kPatience))
      << netprof.report_text();
  {
    const json r = report_of(netprof);
    const struct {
      const char* path;
      const char* name;
      const char* uid;
      const char* qos;
    } expected[] = {{"/alpha", "web-alpha", kUidA, "Burstable"},
                    {"/bravo", "web-bravo", kUidB, "BestEffort"},
                    {"/charlie", "web-charlie", kUidC, "Guaranteed"}};
    for (const auto& e : expected) {
      const json route = route_of(r, e.path);
      ASSERT_TRUE(route.contains("pod")) << route;
      EXPECT_EQ(route["pod"]["name"], e.name) << route;
      EXPECT_EQ(route["pod"]["uid"], e.uid) << route;
      EXPECT_EQ(route["pod"]["qos"], e.qos) << route;
      const json pod = pod_of(r, e.uid);
      ASSERT_FALSE(pod.is_null()) << r["pods"];
      EXPECT_EQ(pod["name"], e.name);
      ASSERT_EQ(pod["routes"].size(), 1u) << pod;  // no other pod's traffic in it
      EXPECT_EQ(pod["routes"][0]["route"], e.path);
      EXPECT_EQ(pod["containers"].size(), 1u);
    }
    EXPECT_EQ(pod_of(r, kUidC)["requests"], 2);
  }
  // Prometheus series carry the pod too.
  const Netns& home = alpha->net().home();
  const std::string before = metrics(home, admin);
  EXPECT_TRUE(has_series(before, "/alpha", "web-alpha", kUidA)) << before;
  EXPECT_TRUE(has_series(before, "/bravo", "web-bravo", kUidB));
  EXPECT_FALSE(has_series(before, "/alpha", "web-bravo", kUidB));
  EXPECT_NE(before.find("netprof_interception_active{mode=\"node\"} 1"), std::string::npos)
      << before;

  // A pod that goes away: detached at once, its stats kept until they expire.
  const Netns& bravo_netns = bravo->net().pod();
  bravo->remove();
  ASSERT_TRUE(wait_until(
      [&] {
        return netprof.log().find("uid " + std::string(kUidB) + ": detached") != std::string::npos;
      },
      kPatience))
      << netprof.log();
  EXPECT_EQ(sk_lookup_programs(bravo_netns), 0u);
  EXPECT_TRUE(wait_until([&] { return field(pod_of(report_of(netprof), kUidB), "gone_at_ms") > 0; },
                         kPatience))
      << netprof.report_text();
  EXPECT_TRUE(
      wait_until([&] { return route_of(report_of(netprof), "/bravo").is_null(); }, kPatience))
      << "stats of the gone pod did not expire: " << netprof.report_text();
  EXPECT_TRUE(pod_of(report_of(netprof), kUidB).is_null());
  const std::string after = metrics(home, admin);
  EXPECT_EQ(after.find(pod_labels("web-bravo", kUidB)), std::string::npos) << after;
  EXPECT_NE(after.find(pod_labels("web-charlie", kUidC)), std::string::npos) << after;
  EXPECT_FALSE(route_of(report_of(netprof), "/alpha").is_null());  // the others stay

  // SIGTERM: detach from every pod, write the final report, exit 0.
  ASSERT_TRUE(netprof.signal(SIGTERM));
  EXPECT_EQ(netprof.wait_exit(kPatience), 0) << netprof.log();
  EXPECT_NE(netprof.log().find("detached from every pod"), std::string::npos);
  EXPECT_EQ(sk_lookup_programs(alpha->net().pod()), 0u);
  EXPECT_EQ(sk_lookup_programs(charlie->net().pod()), 0u);
  for (const SimPod* pod : {alpha.get(), charlie.get()}) {
    EXPECT_EQ(cgroup_programs(pod->pod_dir(), BPF_CGROUP_SOCK_OPS), 0u);
    EXPECT_EQ(cgroup_programs(pod->pod_dir(), BPF_CGROUP_INET4_CONNECT), 0u);
  }
  const json final_report = report_of(netprof);
  EXPECT_EQ(field(route_of(final_report, "/charlie"), "count"), 2) << final_report;
  // Traffic after the exit reaches the app directly.
  EXPECT_NE(get(*alpha, "/after").find(" 404 "), std::string::npos);
}

TEST_F(NodeSimTest, KillNineLeavesNothingAttachedAndARestartAttachesAgain) {
  auto alpha = add("web-alpha", kUidA, SimLayout::kSystemdContainerd);
  ASSERT_TRUE(alpha);
  {
    NodeProcess crashed(node_->root(), {});
    ASSERT_TRUE(wait_until([&] { return attached(crashed, kUidA); }, kPatience)) << crashed.log();
    ASSERT_GE(sk_lookup_programs(alpha->net().pod()), 1u);
    ASSERT_TRUE(crashed.signal(SIGKILL));
    EXPECT_EQ(crashed.wait_exit(kPatience), -1);
    // bpf_link fds die with the process: the kernel detaches, nothing stale to clean.
    EXPECT_TRUE(wait_until([&] { return sk_lookup_programs(alpha->net().pod()) == 0; },
                           std::chrono::seconds(2)));
    EXPECT_EQ(cgroup_programs(alpha->pod_dir(), BPF_CGROUP_SOCK_OPS), 0u);
    EXPECT_NE(get(*alpha, "/direct").find(" 404 "), std::string::npos);
  }
  NodeProcess restarted(node_->root(), {});
  ASSERT_TRUE(wait_until([&] { return attached(restarted, kUidA); }, kPatience)) << restarted.log();
  EXPECT_EQ(sk_lookup_programs(alpha->net().pod()), 1u);  // one, not a stale one plus a new one
  EXPECT_NE(get(*alpha, "/again").find(" 404 "), std::string::npos);
  ASSERT_TRUE(
      wait_until([&] { return !route_of(report_of(restarted), "/again").is_null(); }, kPatience))
      << restarted.report_text();
  ASSERT_TRUE(restarted.signal(SIGTERM));
  EXPECT_EQ(restarted.wait_exit(kPatience), 0) << restarted.log();
  EXPECT_EQ(sk_lookup_programs(alpha->net().pod()), 0u);
}

}  // namespace
}  // namespace netprof::test
