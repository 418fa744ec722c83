// probe_skmsg_fionread() against the same measurements made directly, on netprof's real
// interception of a simulated pod: its verdict must be what the kernel really does, on this
// kernel whichever way that is (the VM suite runs it on 6.1, where redirected bytes are not
// counted; recent stable kernels may instead get TCP-path bytes wrong).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "intercept/interception.h"
#include "intercept/skmsg_probe.h"
#include "intercept/socket_keys.h"
#include "pod_fixture.h"

namespace netprof::test {
namespace {

struct Measured {
  bool wakeup = false;
  bool pollin = false;
  int fionread = -1;
};

// `receiver` has been registered (edge-triggered) in `epoll_fd` before the bytes were sent;
// waits until `size` bytes are there, then measures.
Measured measure(int epoll_fd, int receiver, size_t size) {
  Measured m;
  epoll_event event{};
  m.wakeup = epoll_wait(epoll_fd, &event, 1, 1000) == 1;
  std::string buffer(size + 1, '\0');
  EXPECT_TRUE(wait_until([&] {
    return recv(receiver, buffer.data(), buffer.size(), MSG_PEEK | MSG_DONTWAIT) ==
           static_cast<ssize_t>(size);
  })) << "the bytes never arrived";
  pollfd p{receiver, POLLIN, 0};
  m.pollin = poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
  EXPECT_EQ(ioctl(receiver, FIONREAD, &m.fionread), 0);
  return m;
}

UniqueFd epoll_for(int fd) {
  UniqueFd epoll_fd(epoll_create1(EPOLL_CLOEXEC));
  epoll_event event{};
  event.events = EPOLLIN | EPOLLET;
  EXPECT_EQ(epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, fd, &event), 0);
  return epoll_fd;
}

constexpr int kTcpBytes = 1000;

// kTcpBytes sent over loopback TCP in `ns` to a socket of the SOCKHASH `peers`, from one
// that is not in it (so sk_msg does not see them).
Measured MeasureTcpPath(const Netns& ns, int peers) {
  UniqueFd listener = listen_in(ns, ns, address("127.0.0.1:0"));
  EXPECT_TRUE(listener.valid());
  const SocketAddress at = local_address(listener.get());
  UniqueFd sender(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(connect(sender.get(), at.get(), at.length), 0);
  UniqueFd receiver(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(receiver.valid());
  netprof_tuple key{};
  EXPECT_TRUE(socket_tuple(receiver.get(), key));
  const __u64 value = static_cast<__u64>(receiver.get());
  EXPECT_EQ(bpf_map_update_elem(peers, &key, &value, BPF_ANY), 0);
  UniqueFd epoll_fd = epoll_for(receiver.get());
  const std::string bytes = pattern_bytes(kTcpBytes);
  EXPECT_EQ(send(sender.get(), bytes.data(), bytes.size(), 0), kTcpBytes);
  return measure(epoll_fd.get(), receiver.get(), bytes.size());
}

TEST(SkMsgProbeTest, VerdictMatchesWhatTheKernelDoesForNetprofsSockets) {
  NETPROF_NEED_BPF();
  const SkMsgProbe probe = probe_skmsg_fionread();
  ASSERT_EQ(probe.error, "");
  ASSERT_TRUE(probe.plain.redirected.arrived && probe.plain.tcp_path.arrived) << probe.summary();
  EXPECT_EQ(probe.usable(), skmsg_fionread_verdict().usable()) << "not the same kernel?";

  std::string error;
  auto pod = TestPod::create(error);
  ASSERT_TRUE(pod) << error;
  TestHttpServer app(pod->pod(), pod->home(), address("[::]:8080"));
  InterceptOptions options;
  options.netns_path = pod->pod_path();
  options.inbound_ports = {8080};
  options.skmsg_mode = SkMsgMode::kOn;  // measure the redirect even where it is broken
  auto interception = Interception::start(options);
  ASSERT_TRUE(interception) << interception.error();
  ASSERT_TRUE((*interception)->skmsg_on());
  EXPECT_EQ((*interception)->skb_pass_on(), probe.needs_skb_pass());
  const SkMsgRun& expected = (*interception)->skb_pass_on() ? probe.with_skb_pass : probe.plain;
  TestRelay relay((*interception)->take_listeners());

  // 1. Redirected: a pod client's response comes from the relay through sk_msg.
  UniqueFd client;
  {
    NetnsGuard in_pod(pod->pod(), pod->home());
    client.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  }
  const SocketAddress to = address("127.0.0.1:8080");
  ASSERT_EQ(connect(client.get(), to.get(), to.length), 0);
  UniqueFd client_epoll = epoll_for(client.get());
  const std::string request = get_request("/probe");
  ASSERT_EQ(send(client.get(), request.data(), request.size(), 0),
            static_cast<ssize_t>(request.size()));
  const size_t response_size =
      std::string("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello /probe")
          .size();
  const Measured redirected = measure(client_epoll.get(), client.get(), response_size);
  ASSERT_GT((*interception)->counters()[NETPROF_CNT_MSG_REDIRECTED], 0u);
  EXPECT_EQ(redirected.fionread == static_cast<int>(response_size),
            expected.redirected.fionread == expected.redirected.expected)
      << "direct FIONREAD " << redirected.fionread << "; probe: " << probe.summary();
  EXPECT_EQ(redirected.pollin, expected.redirected.pollin) << probe.summary();
  EXPECT_EQ(redirected.wakeup, expected.redirected.wakeup) << probe.summary();

  // 2. By TCP into a socket of netprof's local_peers (what a socket gets before its peer
  // joins): a loopback pair here, its receiver put in the map as sock_ops would; with
  // netprof's configuration, then (if that had the no-op verdict) without the verdict.
  const int peers = (*interception)->programs().local_peers_fd();
  const Measured by_tcp = MeasureTcpPath(pod->home(), peers);
  EXPECT_EQ(by_tcp.fionread == kTcpBytes, expected.tcp_path.fionread == expected.tcp_path.expected)
      << "direct FIONREAD " << by_tcp.fionread << "; probe: " << probe.summary();
  EXPECT_EQ(by_tcp.pollin, expected.tcp_path.pollin) << probe.summary();
  EXPECT_EQ(by_tcp.wakeup, expected.tcp_path.wakeup) << probe.summary();
  if ((*interception)->skb_pass_on()) {
    // A psock takes the map's programs when the socket joins: later sockets go without it.
    ASSERT_EQ(bpf_prog_detach2(bpf_program__fd((*interception)->programs().skb_pass()), peers,
                               BPF_SK_SKB_VERDICT), 0);
    const Measured plain = MeasureTcpPath(pod->home(), peers);
    EXPECT_EQ(plain.fionread == kTcpBytes,
              probe.plain.tcp_path.fionread == probe.plain.tcp_path.expected)
        << "direct FIONREAD " << plain.fionread << "; probe: " << probe.summary();
    EXPECT_EQ(plain.pollin, probe.plain.tcp_path.pollin) << probe.summary();
    EXPECT_EQ(plain.wakeup, probe.plain.tcp_path.wakeup) << probe.summary();
  }
  // Where the probe lets auto mode use sk_msg, netprof's configuration is right for both.
  if (probe.usable()) {
    EXPECT_EQ(redirected.fionread, static_cast<int>(response_size));
    EXPECT_EQ(by_tcp.fionread, kTcpBytes);
    EXPECT_TRUE(redirected.wakeup && by_tcp.wakeup && redirected.pollin && by_tcp.pollin);
  }
}

}  // namespace
}  // namespace netprof::test
