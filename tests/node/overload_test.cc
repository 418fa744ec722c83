// The overload fail-open end to end: the real `netprof node` on a simulated node with two
// pods, one relay worker, and the test hook (NETPROF_TEST_HOOKS=1) that makes every loop turn
// serving pod alpha's traffic sleep, as if alpha's traffic were too expensive. The guard must
// detach alpha's interception (sk_lookup link gone, reported in the log, /stats and /metrics),
// leave bravo attached, let alpha's new connections reach its app directly (the relay does
// not see them), answer every request sent while stalled, and re-attach alpha after the
// cool-down (counted again).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "http/message_reader.h"
#include "sim_node.h"

namespace netprof::test {
namespace {

using nlohmann::json;

constexpr const char* kUidA = "0a1b2c3d-0000-4000-8000-0000000000a1";
constexpr const char* kUidB = "0a1b2c3d-0000-4000-8000-0000000000b2";
constexpr auto kPatience = std::chrono::seconds(20);

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

// The admin API of the netprof under test, from the test's own (the node's) netns.
class Admin {
 public:
  Admin(const Netns& home, uint16_t port) : home_(home), port_(port) {}
  std::string request(const std::string& method, const std::string& target) const {
    return exchange_in(
        home_, home_, address("127.0.0.1:" + std::to_string(port_)),
        method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  }
  std::string body(const std::string& method, const std::string& target) const {
    auto response = parse_http_message(request(method, target), HttpMessageKind::kResponse);
    return response.ok() ? std::move(response->body) : std::string();
  }
  json stats() const {
    json s = json::parse(body("GET", "/stats"), nullptr, false);
    return s.is_discarded() ? json::object() : s;
  }
  std::string metrics() const { return body("GET", "/metrics"); }

 private:
  const Netns& home_;
  uint16_t port_;
};

json find_by(const json& list, const char* key, const std::string& value) {
  if (!list.is_array()) return nullptr;
  for (const json& item : list)
    if (item.value(key, "") == value) return item;
  return nullptr;
}

// The guard's view of a pod in /stats: "attached", "detached", or "" if not listed.
std::string state_of(const json& stats, const std::string& pod) {
  if (!stats.contains("relay")) return "";
  const json p = find_by(stats["relay"]["overload"]["pods"], "pod", pod);
  return p.is_null() ? "" : p.value("state", "");
}

int64_t route_count(const json& stats, const std::string& path) {
  const json r = find_by(stats.value("routes", json::array()), "route", path);
  return r.is_null() ? 0 : r.value("count", int64_t{0});
}

std::string get(const SimPod& pod, const std::string& path) {
  return exchange_in(pod.net().client(), pod.net().home(), pod.server_address(), get_request(path));
}

bool attached(const NodeProcess& node, const std::string& uid) {
  std::istringstream log(node.log());
  for (std::string line; std::getline(log, line);)
    if (line.find("uid " + uid + " ") != std::string::npos &&
        line.find(": attached") != std::string::npos)
      return true;
  return false;
}

class NodeOverloadTest : public testing::Test {
 protected:
  void SetUp() override {
    NETPROF_NEED_BPF();
    if (run("command -v python3") != 0) GTEST_SKIP() << "python3 not installed";
    std::string error;
    node_ = SimNode::create(error);
    ASSERT_TRUE(node_) << error;
  }
  std::unique_ptr<SimNode> node_;
};

TEST_F(NodeOverloadTest, DetachesOnlyTheStalledPodServesItDirectlyAndReattachesAfter) {
  std::string error;
  auto alpha = node_->add_pod("web-alpha", kUidA, SimLayout::kSystemdContainerd, error);
  ASSERT_TRUE(alpha) << error;
  auto bravo = node_->add_pod("web-bravo", kUidB, SimLayout::kCgroupfs, error);
  ASSERT_TRUE(bravo) << error;
  const uint16_t admin_port = free_port();
  ASSERT_NE(admin_port, 0);
  // The hook exists only with this variable; the child inherits it.
  setenv("NETPROF_TEST_HOOKS", "1", 1);
  NodeProcess netprof(node_->root(), {"--admin", "127.0.0.1:" + std::to_string(admin_port),
                                      "--workers", "1", "--stats-interval", "0.2", "--overload-lag",
                                      "0.05", "--overload-for", "0.6", "--overload-cooldown", "4"});
  unsetenv("NETPROF_TEST_HOOKS");
  const Admin admin(alpha->net().home(), admin_port);
  ASSERT_TRUE(
      wait_until([&] { return attached(netprof, kUidA) && attached(netprof, kUidB); }, kPatience))
      << netprof.log();
  ASSERT_NE(get(*alpha, "/a-before").find(" 404 "), std::string::npos);
  ASSERT_NE(get(*bravo, "/b-before").find(" 404 "), std::string::npos);
  json stats;
  ASSERT_TRUE(wait_until(
      [&] {
        stats = admin.stats();
        return route_count(stats, "/a-before") == 1 && route_count(stats, "/b-before") == 1 &&
               state_of(stats, "web-alpha") == "attached" &&
               state_of(stats, "web-bravo") == "attached";
      },
      kPatience))
      << stats.dump();
  const json alpha_pod = find_by(stats["pods"], "uid", kUidA);
  ASSERT_FALSE(alpha_pod.is_null()) << stats.dump();
  const uint32_t alpha_scope = alpha_pod["scopes"][0].get<uint32_t>();

  // Stall: every turn that serves alpha sleeps 120 ms. Alpha's clients keep coming.
  const std::string stalled =
      admin.request("POST", "/debug/stall?ms=120&seconds=30&scope=" + std::to_string(alpha_scope));
  ASSERT_NE(stalled.find(" 200 "), std::string::npos) << stalled;
  std::atomic<bool> driving{true};
  std::atomic<int> sent{0}, answered{0};
  std::thread driver([&] {
    while (driving.load()) {
      ++sent;
      if (get(*alpha, "/a-stalled").find(" 404 ") != std::string::npos) ++answered;
    }
  });
  const bool detached =
      wait_until([&] { return state_of(admin.stats(), "web-alpha") == "detached"; }, kPatience);
  driving.store(false);
  driver.join();
  ASSERT_TRUE(detached) << admin.stats().dump() << "\n" << netprof.log();
  // No request was lost or cut while the loop was stalled or when the pod was detached.
  EXPECT_GT(sent.load(), 0);
  EXPECT_EQ(answered.load(), sent.load());
  admin.request("POST", "/debug/stall?ms=0&seconds=0");  // over (alpha is off the relay anyway)

  // Only alpha: its sk_lookup link is gone, bravo's stays; said in the log and /metrics.
  EXPECT_EQ(sk_lookup_programs(alpha->net().pod()), 0u);
  EXPECT_GE(sk_lookup_programs(bravo->net().pod()), 1u);
  EXPECT_NE(netprof.log().find("overload: detached pod web-alpha"), std::string::npos)
      << netprof.log();
  EXPECT_EQ(netprof.log().find("overload: detached pod web-bravo"), std::string::npos);
  stats = admin.stats();
  EXPECT_EQ(state_of(stats, "web-bravo"), "attached");
  const json alpha_state = find_by(stats["relay"]["overload"]["pods"], "pod", "web-alpha");
  EXPECT_NE(alpha_state.value("reason", "").find("lagged"), std::string::npos) << alpha_state;
  EXPECT_GT(alpha_state.value("until_ms", int64_t{0}), alpha_state.value("since_ms", int64_t{0}));
  const std::string metrics = admin.metrics();
  EXPECT_NE(metrics.find("netprof_interception_active{mode=\"node\",pod=\"web-alpha\"} 0"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("netprof_interception_active{mode=\"node\",pod=\"web-bravo\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("netprof_overload_detaches_total 1"), std::string::npos);
  EXPECT_NE(metrics.find("netprof_relay_loop_lag_seconds_bucket{worker=\"0\""), std::string::npos);
  EXPECT_NE(metrics.find("netprof_relay_added_seconds_count"), std::string::npos);

  // While detached, alpha's new connections go straight to its app: answered, not counted.
  // Bravo's request after them is counted; once it shows, alpha's would have too.
  // Connections relayed before the detachment are all counted once the figure holds still.
  int64_t accepted = -1;
  ASSERT_TRUE(wait_until(
      [&] {
        const int64_t before = admin.stats()["connections"].value("accepted", int64_t{-1});
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        accepted = admin.stats()["connections"].value("accepted", int64_t{-1});
        return accepted == before && accepted > 0;
      },
      kPatience));
  for (int i = 0; i < 5; ++i) EXPECT_NE(get(*alpha, "/a-direct").find(" 404 "), std::string::npos);
  EXPECT_NE(get(*bravo, "/b-during").find(" 404 "), std::string::npos);
  ASSERT_TRUE(
      wait_until([&] { return route_count(stats = admin.stats(), "/b-during") == 1; }, kPatience))
      << stats.dump();
  EXPECT_EQ(route_count(stats, "/a-direct"), 0) << "the relay saw a detached pod's connection";
  EXPECT_EQ(stats["connections"].value("accepted", int64_t{0}), accepted + 1);

  // After the cool-down: attached again, and alpha's requests are counted again.
  ASSERT_TRUE(
      wait_until([&] { return state_of(admin.stats(), "web-alpha") == "attached"; }, kPatience))
      << netprof.log();
  EXPECT_GE(sk_lookup_programs(alpha->net().pod()), 1u);
  EXPECT_NE(netprof.log().find("overload: re-attached pod web-alpha"), std::string::npos);
  EXPECT_NE(get(*alpha, "/a-after").find(" 404 "), std::string::npos);
  EXPECT_TRUE(wait_until([&] { return route_count(admin.stats(), "/a-after") == 1; }, kPatience))
      << admin.stats().dump();
  EXPECT_NE(admin.metrics().find("netprof_interception_active{mode=\"node\",pod=\"web-alpha\"} 1"),
            std::string::npos);

  ASSERT_TRUE(netprof.signal(SIGTERM));
  EXPECT_EQ(netprof.wait_exit(kPatience), 0) << netprof.log();
  EXPECT_EQ(sk_lookup_programs(alpha->net().pod()), 0u);
}

TEST_F(NodeOverloadTest, TheStallHookDoesNotExistWithoutTheVariable) {
  const uint16_t admin_port = free_port();
  ASSERT_NE(admin_port, 0);
  unsetenv("NETPROF_TEST_HOOKS");
  NodeProcess netprof(node_->root(), {"--admin", "127.0.0.1:" + std::to_string(admin_port)});
  std::string error;
  auto home = Netns::open("");
  ASSERT_TRUE(home) << home.error();
  const Admin admin(*home, admin_port);
  ASSERT_TRUE(wait_until(
      [&] { return admin.request("GET", "/healthz").find(" 200 ") != std::string::npos; },
      kPatience))
      << netprof.log();
  EXPECT_NE(admin.request("POST", "/debug/stall?ms=100&seconds=5").find(" 405 "),
            std::string::npos);
  EXPECT_NE(admin.request("GET", "/debug/stall?ms=100&seconds=5").find(" 404 "), std::string::npos);
  EXPECT_EQ(netprof.log().find("test hook"), std::string::npos);
  EXPECT_EQ(netprof.log().find("TEST_HOOKS"), std::string::npos);
}

}  // namespace
}  // namespace netprof::test
