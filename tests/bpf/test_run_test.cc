// Table-driven BPF_PROG_TEST_RUN tests of netprof_steer_inbound (sk_lookup), the program
// type with test_run support (Linux 5.14+). The kernel runs a pod's real copy of the program
// (InterceptPrograms::load_pod_lookup) against a synthetic lookup and reports which socket it
// selected, by cookie. A second pod's listeners and guards sit in the same shared maps: the
// copy must never pick them.
// sock_ops, sk_msg and cgroup sock_addr have no BPF_PROG_TEST_RUN (ENOTSUPP on Linux 6.18); they are
// covered by the real-socket tests (outbound_test, skmsg_test).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>

#include "intercept/bpf_programs.h"
#include "intercept/libbpf_log.h"
#include "intercept/socket_keys.h"
#include "pod_fixture.h"

namespace netprof::test {
namespace {

enum class Selected { kNone, kV4Listener, kV6Listener };

struct LookupCase {
  const char* what;
  int family;
  int protocol;
  const char* local;   // destination address
  uint16_t local_port;
  const char* remote;  // source address
  uint16_t remote_port;
  Selected selected;
  netprof_counter counted;  // the counter that must go up by one (COUNT = none)
};

const LookupCase kCases[] = {
    {"target port, IPv4: relay's v4 listener", AF_INET, IPPROTO_TCP, "10.0.0.2", 8080,
     "10.0.0.9", 5555, Selected::kV4Listener, NETPROF_CNT_LOOKUP_STEERED},
    {"target port, IPv6: relay's v6 listener", AF_INET6, IPPROTO_TCP, "fd00::2", 443, "fd00::9",
     5555, Selected::kV6Listener, NETPROF_CNT_LOOKUP_STEERED},
    {"loopback client inside the pod", AF_INET, IPPROTO_TCP, "127.0.0.1", 8080, "127.0.0.1",
     41000, Selected::kV4Listener, NETPROF_CNT_LOOKUP_STEERED},
    {"other port: normal lookup", AF_INET, IPPROTO_TCP, "10.0.0.2", 8081, "10.0.0.9", 5555,
     Selected::kNone, NETPROF_CNT_COUNT},
    {"UDP on a target port: untouched", AF_INET, IPPROTO_UDP, "10.0.0.2", 8080, "10.0.0.9", 5555,
     Selected::kNone, NETPROF_CNT_COUNT},
    {"relay upstream (guarded tuple), IPv4: reaches the app", AF_INET, IPPROTO_TCP, "10.0.0.2",
     8080, "10.0.0.2", 40000, Selected::kNone, NETPROF_CNT_LOOKUP_GUARDED},
    {"relay upstream (guarded tuple), IPv6: reaches the app", AF_INET6, IPPROTO_TCP, "fd00::2",
     443, "fd00::2", 40000, Selected::kNone, NETPROF_CNT_LOOKUP_GUARDED},
    {"same source address, other port: not guarded", AF_INET, IPPROTO_TCP, "10.0.0.2", 8080,
     "10.0.0.2", 40001, Selected::kV4Listener, NETPROF_CNT_LOOKUP_STEERED},
    {"guard is per destination port too", AF_INET, IPPROTO_TCP, "10.0.0.2", 443, "10.0.0.2",
     40000, Selected::kV4Listener, NETPROF_CNT_LOOKUP_STEERED},
    {"another pod's guard on this tuple: still this pod's listener", AF_INET, IPPROTO_TCP,
     "10.0.0.2", 8080, "10.0.0.2", 40001, Selected::kV4Listener, NETPROF_CNT_LOOKUP_STEERED},
};

SocketAddress ip_port(int family, const char* ip, uint16_t port) {
  return address(family == AF_INET6 ? "[" + std::string(ip) + "]:" + std::to_string(port)
                                    : std::string(ip) + ":" + std::to_string(port));
}

uint64_t cookie_of(int fd) {
  uint64_t cookie = 0;
  socklen_t length = sizeof(cookie);
  getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &length);
  return cookie;
}

class SkLookupTestRun : public ::testing::Test {
 protected:
  void SetUp() override {
    NETPROF_NEED_BPF();
    set_libbpf_verbose(std::getenv("NETPROF_TEST_VERBOSE") != nullptr);
    ProgramConfig config;
    config.inbound = true;
    config.sizes.pods = 4;
    auto programs = InterceptPrograms::load(config);
    ASSERT_TRUE(programs) << programs.error();
    programs_ = std::make_unique<InterceptPrograms>(std::move(*programs));
    for (uint64_t pod : {kPod, kOtherPod}) {
      netprof_pod entry{};
      entry.relay_workers = 1;
      ASSERT_EQ(bpf_map_update_elem(programs_->pods_fd(), &pod, &entry, BPF_ANY), 0);
    }
    auto lookup = programs_->load_pod_lookup(kPod);
    ASSERT_TRUE(lookup) << lookup.error();
    lookup_ = std::move(*lookup);

    const __u8 one = 1;
    for (__u16 port : {__u16{8080}, __u16{443}})
      ASSERT_EQ(bpf_map_update_elem(programs_->inbound_ports_fd(), &port, &one, BPF_ANY), 0);
    auto home = Netns::open("");
    ASSERT_TRUE(home);
    v4_ = listen_in(*home, *home, address("127.0.0.1:0"));
    v6_ = listen_in(*home, *home, address("[::1]:0"));
    other4_ = listen_in(*home, *home, address("127.0.0.1:0"));
    ASSERT_TRUE(v4_.valid() && v6_.valid() && other4_.valid());
    SetListener(kPod, NETPROF_SLOT_INBOUND_V4, v4_.get());
    SetListener(kPod, NETPROF_SLOT_INBOUND_V6, v6_.get());
    // The other pod: a v4 listener, and a guard on a tuple this pod would steer.
    SetListener(kOtherPod, NETPROF_SLOT_INBOUND_V4, other4_.get());
    Guard(kPod, AF_INET, "10.0.0.2", 8080, "10.0.0.2", 40000);
    Guard(kPod, AF_INET6, "fd00::2", 443, "fd00::2", 40000);
    Guard(kOtherPod, AF_INET, "10.0.0.2", 8080, "10.0.0.2", 40001);
  }

  static netprof_listener_key ListenerKey(uint64_t pod, __u32 slot) {
    netprof_listener_key key{};
    key.netns_cookie = pod;
    key.slot = slot;
    return key;
  }

  void SetListener(uint64_t pod, __u32 slot, int fd) {
    const __u64 value = static_cast<__u64>(fd);
    const netprof_listener_key key = ListenerKey(pod, slot);
    ASSERT_EQ(bpf_map_update_elem(programs_->relay_listeners_fd(), &key, &value, BPF_ANY), 0);
  }

  void Guard(uint64_t pod, int family, const char* local, uint16_t local_port, const char* remote,
             uint16_t remote_port) {
    netprof_tuple tuple;
    ASSERT_TRUE(make_tuple(ip_port(family, local, local_port),
                           ip_port(family, remote, remote_port), tuple));
    const netprof_sock_key key = sock_key(pod, tuple);
    const __u8 one = 1;
    ASSERT_EQ(bpf_map_update_elem(programs_->upstream_guard_fd(), &key, &one, BPF_ANY), 0);
  }

  // Runs the program on one synthetic lookup; returns the selected socket's cookie (0 = none).
  uint64_t Run(const LookupCase& c) {
    bpf_sk_lookup ctx{};
    ctx.family = static_cast<__u32>(c.family);
    ctx.protocol = static_cast<__u32>(c.protocol);
    ctx.local_port = c.local_port;
    ctx.remote_port = htons(c.remote_port);
    if (c.family == AF_INET) {
      inet_pton(AF_INET, c.local, &ctx.local_ip4);
      inet_pton(AF_INET, c.remote, &ctx.remote_ip4);
    } else {
      inet_pton(AF_INET6, c.local, ctx.local_ip6);
      inet_pton(AF_INET6, c.remote, ctx.remote_ip6);
    }
    bpf_sk_lookup out{};
    LIBBPF_OPTS(bpf_test_run_opts, options);
    options.ctx_in = &ctx;
    options.ctx_size_in = sizeof(ctx);
    options.ctx_out = &out;
    options.ctx_size_out = sizeof(out);
    const int err = bpf_prog_test_run_opts(lookup_.get(), &options);
    EXPECT_EQ(err, 0) << c.what << ": BPF_PROG_TEST_RUN failed: " << std::strerror(-err);
    EXPECT_EQ(options.retval, static_cast<__u32>(SK_PASS)) << c.what;
    return out.cookie;
  }

  // Any two cookies: the test never attaches, so they need not be real namespaces'.
  static constexpr uint64_t kPod = 1000001, kOtherPod = 1000002;
  std::unique_ptr<InterceptPrograms> programs_;
  UniqueFd lookup_;
  UniqueFd v4_, v6_, other4_;
};

TEST_F(SkLookupTestRun, Table) {
  for (const LookupCase& c : kCases) {
    SCOPED_TRACE(c.what);
    const CounterValues before = programs_->counters();
    const uint64_t selected = Run(c);
    const uint64_t expected = c.selected == Selected::kV4Listener   ? cookie_of(v4_.get())
                              : c.selected == Selected::kV6Listener ? cookie_of(v6_.get())
                                                                    : 0;
    EXPECT_EQ(selected, expected);
    const CounterValues after = programs_->counters();
    for (int i = 0; i < NETPROF_CNT_COUNT; ++i)
      EXPECT_EQ(after[i] - before[i], i == c.counted ? 1u : 0u) << "counter " << i;
  }
}

TEST_F(SkLookupTestRun, NoListenerFailsOpen) {
  // The other pod still has a v4 listener: it must not be taken instead.
  const netprof_listener_key key = ListenerKey(kPod, NETPROF_SLOT_INBOUND_V4);
  ASSERT_EQ(bpf_map_delete_elem(programs_->relay_listeners_fd(), &key), 0);
  const CounterValues before = programs_->counters();
  EXPECT_EQ(Run(kCases[0]), 0u);
  EXPECT_EQ(programs_->counters()[NETPROF_CNT_LOOKUP_FAIL_OPEN] -
                before[NETPROF_CNT_LOOKUP_FAIL_OPEN],
            1u);
}

TEST_F(SkLookupTestRun, DetachedPodFailsOpen) {
  // The pod's entry goes first when it detaches: its copy then steers nothing.
  ASSERT_EQ(bpf_map_delete_elem(programs_->pods_fd(), &kPod), 0);
  const CounterValues before = programs_->counters();
  EXPECT_EQ(Run(kCases[0]), 0u);
  EXPECT_EQ(programs_->counters()[NETPROF_CNT_LOOKUP_FAIL_OPEN] -
                before[NETPROF_CNT_LOOKUP_FAIL_OPEN],
            1u);
}

TEST_F(SkLookupTestRun, EachPodsCopySelectsItsOwnListener) {
  auto other = programs_->load_pod_lookup(kOtherPod);
  ASSERT_TRUE(other) << other.error();
  std::swap(lookup_, *other);
  EXPECT_EQ(Run(kCases[0]), cookie_of(other4_.get()));
}

TEST_F(SkLookupTestRun, ClosedListenerLeavesTheSockmapAndFailsOpen) {
  // What happens when the relay stops before the link is gone: the kernel drops a closed
  // socket from the SOCKMAP, so lookups go to the app.
  v4_.reset();
  EXPECT_EQ(Run(kCases[0]), 0u);
}

}  // namespace
}  // namespace netprof::test
