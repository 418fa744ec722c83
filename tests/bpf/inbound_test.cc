// Inbound interception on a real kernel: sk_lookup steers connections for a target port of
// a simulated pod to the real relay, from outside (veth) and inside (loopback), IPv4 and
// IPv6; other ports and other namespaces are untouched; the relay's upstream reaches the app.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "intercept/interception.h"
#include "intercept/libbpf_log.h"
#include "pod_fixture.h"

namespace netprof::test {
namespace {

constexpr uint16_t kAppPort = 8080;
constexpr uint16_t kOtherPort = 8081;

class InboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NETPROF_NEED_BPF();
    set_libbpf_verbose(std::getenv("NETPROF_TEST_VERBOSE") != nullptr);
    std::string error;
    pod_ = TestPod::create(error);
    ASSERT_TRUE(pod_) << error;
    app_ = std::make_unique<TestHttpServer>(pod_->pod(), pod_->home(),
                                            address("[::]:" + std::to_string(kAppPort)));
  }

  void Attach(bool skmsg = false) {
    InterceptOptions options;
    options.netns_path = pod_->pod_path();
    options.inbound_ports = {kAppPort};
    options.skmsg = skmsg;
    auto interception = Interception::start(options);
    ASSERT_TRUE(interception) << interception.error();
    interception_ = std::move(*interception);
    relay_ = std::make_unique<TestRelay>(interception_->take_listeners());
  }

  // One GET from `ns` to `to`; expects the app's answer.
  void Get(const Netns& ns, const std::string& to, const std::string& path) {
    std::string error;
    const std::string response =
        exchange_in(ns, pod_->home(), address(to), get_request(path), &error);
    ASSERT_NE(response, "") << error;
    EXPECT_NE(response.find("200 OK"), std::string::npos) << response;
    EXPECT_NE(response.find("hello " + path), std::string::npos) << response;
  }

  void ExpectRelayed(const std::vector<std::string>& paths) {
    EXPECT_TRUE(wait_until([&] { return relay_->paths().size() >= paths.size(); }));
    std::vector<std::string> expected;
    for (const auto& path : paths) expected.push_back("0 " + path + " 200");
    EXPECT_EQ(relay_->paths(), expected);
  }

  void TearDown() override {
    relay_.reset();
    interception_.reset();
  }

  std::unique_ptr<TestPod> pod_;
  std::unique_ptr<TestHttpServer> app_;
  std::unique_ptr<Interception> interception_;
  std::unique_ptr<TestRelay> relay_;
};

TEST_F(InboundTest, ClientOutsideThePodIsRelayedOverIpv4AndIpv6) {
  Attach();
  Get(pod_->client(), pod_->pod_ip4 + ":8080", "/v4/outside");
  Get(pod_->client(), "[" + pod_->pod_ip6 + "]:8080", "/v6/outside");
  ExpectRelayed({"/v4/outside", "/v6/outside"});

  // The app saw each request once, byte for byte, from the relay's upstream (the pod's
  // own address as source), so there was no loop and no second trip through the relay.
  const auto requests = app_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0], get_request("/v4/outside"));
  EXPECT_EQ(requests[1], get_request("/v6/outside"));
  const auto peers = app_->peers();
  // The app listens dual-stack, so IPv4 peers show as [::ffff:a.b.c.d]:port.
  EXPECT_NE(peers[0].find(pod_->pod_ip4 + "]:"), std::string::npos) << peers[0];
  EXPECT_NE(peers[1].find("[" + pod_->pod_ip6 + "]:"), std::string::npos) << peers[1];
  EXPECT_EQ(relay_->counters().accepted.load(), 2u);

  const CounterValues counters = interception_->counters();
  EXPECT_EQ(counters[NETPROF_CNT_LOOKUP_STEERED], 2u);
  EXPECT_EQ(counters[NETPROF_CNT_LOOKUP_GUARDED], 2u);
}

TEST_F(InboundTest, ClientInsideThePodOverLoopbackIsRelayed) {
  Attach();
  Get(pod_->pod(), "127.0.0.1:8080", "/v4/inside");
  Get(pod_->pod(), "[::1]:8080", "/v6/inside");
  ExpectRelayed({"/v4/inside", "/v6/inside"});
  const auto requests = app_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1], get_request("/v6/inside"));
  EXPECT_EQ(relay_->counters().accepted.load(), 2u);
}

TEST_F(InboundTest, OtherPortsAndOtherNamespacesAreUntouched) {
  TestHttpServer other_port(pod_->pod(), pod_->home(), address("[::]:8081"));
  TestHttpServer other_netns(pod_->client(), pod_->home(), address("[::]:8080"));
  Attach();
  Get(pod_->client(), pod_->pod_ip4 + ":" + std::to_string(kOtherPort), "/other-port");
  Get(pod_->client(), "127.0.0.1:8080", "/other-netns");
  Get(pod_->pod(), pod_->client_ip4 + ":8080", "/pod-to-outside");
  EXPECT_EQ(other_port.requests().size(), 1u);
  EXPECT_EQ(other_netns.requests().size(), 2u);
  EXPECT_EQ(app_->requests().size(), 0u);
  EXPECT_EQ(relay_->counters().accepted.load(), 0u);
  EXPECT_EQ(interception_->counters()[NETPROF_CNT_LOOKUP_STEERED], 0u);
}

TEST_F(InboundTest, DetachRestoresTheDirectPath) {
  Attach();
  Get(pod_->client(), pod_->pod_ip4 + ":8080", "/relayed");
  ExpectRelayed({"/relayed"});
  relay_.reset();
  interception_.reset();
  Get(pod_->client(), pod_->pod_ip4 + ":8080", "/direct");
  const auto peers = app_->peers();
  ASSERT_EQ(peers.size(), 2u);
  EXPECT_NE(peers[1].find(pod_->client_ip4 + "]:"), std::string::npos) << "not direct: " << peers[1];
}

// Relay workers dial concurrently and an inbound dialer keeps a ring of guard entries that it
// grows in place: workers sharing one crashed netprof under load (a worker read the ring
// another had just reallocated). Each worker gets its own; a worker's two families share it.
TEST_F(InboundTest, EachWorkerHasItsOwnInboundDialer) {
  InterceptOptions options;
  options.netns_path = pod_->pod_path();
  options.inbound_ports = {kAppPort};
  options.skmsg = false;
  options.workers = 2;
  options.map_sizes.workers = 2;
  auto interception = Interception::start(options);
  ASSERT_TRUE(interception) << interception.error();
  std::map<uint32_t, std::set<const UpstreamDialer*>> dialers;  // worker -> its dialers
  for (const ListenerSpec& listener : (*interception)->take_listeners())
    if (listener.scope == options.inbound_scope) dialers[listener.worker].insert(listener.dialer.get());
  ASSERT_EQ(dialers.size(), 2u);
  ASSERT_EQ(dialers[0].size(), 1u);
  ASSERT_EQ(dialers[1].size(), 1u);
  EXPECT_NE(*dialers[0].begin(), *dialers[1].begin());
}

}  // namespace
}  // namespace netprof::test
