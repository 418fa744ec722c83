// Outbound interception on a real kernel: curl running in the pod's netns and cgroup calls
// a server outside the pod; connect4/connect6 send it through the relay, which learns the
// original destination from sock_ops and dials it from the pod. Other cgroups, other ports
// and the relay's own upstream (even from inside the cgroup) are left alone.
#include <gtest/gtest.h>

#include "intercept/interception.h"
#include "intercept/libbpf_log.h"
#include "pod_fixture.h"

namespace netprof::test {
namespace {

constexpr uint16_t kRemotePort = 9090;

class OutboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NETPROF_NEED_BPF();
    if (run("command -v curl") != 0) GTEST_SKIP() << "curl not installed";
    set_libbpf_verbose(std::getenv("NETPROF_TEST_VERBOSE") != nullptr);
    std::string error;
    pod_ = TestPod::create(error);
    ASSERT_TRUE(pod_) << error;
    cgroup_ = TestCgroup::create(error);
    ASSERT_TRUE(cgroup_) << error;
    remote_ = std::make_unique<TestHttpServer>(pod_->client(), pod_->home(),
                                               address("[::]:" + std::to_string(kRemotePort)));
  }

  void Attach(bool skmsg) {
    InterceptOptions options;
    options.netns_path = pod_->pod_path();
    options.cgroup_path = cgroup_->path();
    options.outbound_ports = {kRemotePort};
    options.skmsg_mode = skmsg ? SkMsgMode::kOn : SkMsgMode::kOff;
    auto interception = Interception::start(options);
    ASSERT_TRUE(interception) << interception.error();
    interception_ = std::move(*interception);
    relay_ = std::make_unique<TestRelay>(interception_->take_listeners());
  }

  // curl from the pod; `in_cgroup` = as a process of the pod's cgroup.
  std::string Curl(const std::string& url, bool in_cgroup = true) {
    const ProcessResult result =
        run_in(pod_->pod(), in_cgroup ? cgroup_->path() : "",
               {"curl", "-s", "-S", "--max-time", "5", "-g", url});
    EXPECT_EQ(result.status, 0) << url;
    return result.output;
  }

  void TearDown() override {
    relay_.reset();
    interception_.reset();
  }

  std::unique_ptr<TestPod> pod_;
  std::unique_ptr<TestCgroup> cgroup_;
  std::unique_ptr<TestHttpServer> remote_;
  std::unique_ptr<Interception> interception_;
  std::unique_ptr<TestRelay> relay_;
};

TEST_F(OutboundTest, CgroupClientIsRelayedToItsOriginalDestinationOverIpv4AndIpv6) {
  Attach(/*skmsg=*/true);
  EXPECT_EQ(Curl("http://" + pod_->client_ip4 + ":9090/out/v4"), "hello /out/v4");
  EXPECT_EQ(Curl("http://[" + pod_->client_ip6 + "]:9090/out/v6"), "hello /out/v6");
  EXPECT_TRUE(wait_until([&] { return relay_->paths().size() >= 2; }));
  EXPECT_EQ(relay_->paths(), (std::vector<std::string>{"1 /out/v4 200", "1 /out/v6 200"}));

  // The server saw curl's requests (not something the relay made up) from the pod's
  // addresses: the relay dialed from inside the pod.
  const auto requests = remote_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].rfind("GET /out/v4 HTTP/1.1\r\nHost: " + pod_->client_ip4 + ":9090\r\n", 0), 0u)
      << requests[0];
  const auto peers = remote_->peers();
  EXPECT_NE(peers[0].find(pod_->pod_ip4 + "]:"), std::string::npos) << peers[0];
  EXPECT_NE(peers[1].find("[" + pod_->pod_ip6 + "]:"), std::string::npos) << peers[1];

  const CounterValues counters = interception_->counters();
  EXPECT_EQ(counters[NETPROF_CNT_CONNECT_REWRITTEN], 2u);
  EXPECT_EQ(counters[NETPROF_CNT_ORIG_DST_RECORDED], 2u);
  // curl <-> relay is a local hop: with sk_msg on, its bytes took the redirect.
  EXPECT_GT(counters[NETPROF_CNT_MSG_REDIRECTED], 0u);
}

TEST_F(OutboundTest, OtherCgroupsAndPortsAreUntouched) {
  TestHttpServer other_port(pod_->client(), pod_->home(), address("[::]:9091"));
  Attach(/*skmsg=*/false);
  EXPECT_EQ(Curl("http://" + pod_->client_ip4 + ":9090/not-in-cgroup", false),
            "hello /not-in-cgroup");
  EXPECT_EQ(Curl("http://" + pod_->client_ip4 + ":9091/other-port"), "hello /other-port");
  EXPECT_EQ(remote_->requests().size(), 1u);
  EXPECT_EQ(other_port.requests().size(), 1u);
  EXPECT_EQ(relay_->counters().accepted.load(), 0u);
  EXPECT_EQ(interception_->counters()[NETPROF_CNT_CONNECT_REWRITTEN], 0u);
}

TEST_F(OutboundTest, RelayInsideTheTargetCgroupDoesNotLoop) {
  const std::string home_cgroup = current_cgroup();
  ASSERT_FALSE(home_cgroup.empty());
  Attach(/*skmsg=*/false);
  // Now the relay's own upstream connect runs the cgroup's connect4 too.
  ASSERT_TRUE(move_self_to_cgroup(cgroup_->path()));
  const std::string body = Curl("http://" + pod_->client_ip4 + ":9090/from-inside");
  ASSERT_TRUE(move_self_to_cgroup(home_cgroup));
  EXPECT_EQ(body, "hello /from-inside");
  EXPECT_EQ(relay_->counters().accepted.load(), 1u);
  EXPECT_EQ(remote_->requests().size(), 1u);
  const CounterValues counters = interception_->counters();
  EXPECT_EQ(counters[NETPROF_CNT_CONNECT_REWRITTEN], 1u);
  EXPECT_EQ(counters[NETPROF_CNT_CONNECT_GUARDED], 1u);
}

}  // namespace
}  // namespace netprof::test
