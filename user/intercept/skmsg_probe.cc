#include "intercept/skmsg_probe.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "intercept/bpf_programs.h"
#include "intercept/netns.h"
#include "intercept/socket_keys.h"
#include "base/unique_fd.h"

namespace netprof {
namespace {

constexpr char kPayload[] = "netprof";  // 7 bytes
constexpr int kPayloadSize = sizeof(kPayload) - 1;
// How long bytes and wakeups may take on loopback. They come within the send() itself on
// every kernel seen; the margin only matters, once, on a broken or very loaded one.
constexpr auto kPatience = std::chrono::milliseconds(250);

// A new netns for this thread, with lo up: the probe's sockets and addresses then collide
// with nothing and vanish with their last fd. Returns "" or why it could not.
std::string enter_throwaway_netns() {
  if (unshare(CLONE_NEWNET) != 0) return std::string("unshare: ") + std::strerror(errno);
  UniqueFd control(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (!control.valid() || ioctl(control.get(), SIOCGIFFLAGS, &request) != 0)
    return std::string("lo: ") + std::strerror(errno);
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  if (ioctl(control.get(), SIOCSIFFLAGS, &request) != 0)
    return std::string("lo up: ") + std::strerror(errno);
  return "";
}

struct Pair {
  UniqueFd sender, receiver;
};

Expected<Pair> connect_pair(int listener, const SocketAddress& at) {
  Pair pair;
  pair.sender.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!pair.sender.valid()) return errno_error("socket", errno);
  if (connect(pair.sender.get(), at.get(), at.length) != 0) return errno_error("connect", errno);
  pair.receiver.reset(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!pair.receiver.valid()) return errno_error("accept", errno);
  return pair;
}

// Into local_peers under its own tuple, the key sock_ops would have used.
Status add_to_peers(int map_fd, int fd) {
  netprof_tuple tuple{};
  if (!socket_tuple(fd, tuple)) return errno_error("getsockname", errno);
  // netprof_redirect_local looks peers up in the sending socket's netns.
  const netprof_sock_key key = sock_key(socket_netns_cookie(fd), tuple);
  const __u64 value = static_cast<__u64>(fd);
  if (bpf_map_update_elem(map_fd, &key, &value, BPF_ANY) != 0)
    return errno_error("cannot put a socket in local_peers", errno);
  return ok_status();
}

using Clock = std::chrono::steady_clock;

// Waits (up to the deadline) for the edge-triggered events of `fds`; sets wakeup per fd.
void collect_wakeups(int epoll_fd, ReceiveCheck* checks[2], Clock::time_point deadline) {
  while (!(checks[0]->wakeup && checks[1]->wakeup)) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return;
    epoll_event events[2];
    const int n = epoll_wait(epoll_fd, events, 2, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; ++i)
      if (events[i].events & EPOLLIN) checks[events[i].data.u32]->wakeup = true;
  }
}

void inspect(int fd, ReceiveCheck& check, Clock::time_point deadline) {
  char buffer[kPayloadSize + 1];
  // The bytes are there for certain before FIONREAD is asked (a 0 then is the kernel's).
  do {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_PEEK | MSG_DONTWAIT);
    if (n == kPayloadSize) check.arrived = true;
    else std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } while (!check.arrived && Clock::now() < deadline);
  pollfd p{fd, POLLIN, 0};
  check.pollin = poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
  int available = -1;
  if (ioctl(fd, FIONREAD, &available) == 0) check.fionread = available;
  // Reading them back proves they were the bytes sent, not something else.
  if (check.arrived &&
      (recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT) != kPayloadSize ||
       std::memcmp(buffer, kPayload, kPayloadSize) != 0))
    check.arrived = false;
}

Expected<SkMsgRun> run_once(bool skb_pass) {
  SkMsgRun run;
  run.skb_pass = skb_pass;
  run.redirected.expected = run.tcp_path.expected = kPayloadSize;

  ProgramConfig config;
  config.skmsg = true;
  config.skb_pass = skb_pass;
  // A few sockets at most: small maps keep the experiment's memory out of the node's peak.
  config.sizes.pending = 16;
  config.sizes.local_peers = 16;
  auto programs = InterceptPrograms::load(config);
  if (!programs) return programs.take_error();
  const int peers = programs->local_peers_fd();
  auto skmsg = MapAttachment::attach(bpf_program__fd(programs->redirect_local()), peers,
                                     BPF_SK_MSG_VERDICT, "sk_msg");
  if (!skmsg) return skmsg.take_error();
  std::optional<MapAttachment> verdict;
  if (skb_pass) {
    auto attached = MapAttachment::attach(bpf_program__fd(programs->skb_pass()), peers,
                                          BPF_SK_SKB_VERDICT, "the no-op SK_SKB verdict");
    if (!attached) return attached.take_error();
    verdict.emplace(std::move(*attached));
  }

  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SocketAddress at;
  auto* in = reinterpret_cast<sockaddr_in*>(at.get());
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  at.length = sizeof(sockaddr_in);
  if (!listener.valid() || bind(listener.get(), at.get(), at.length) != 0 ||
      listen(listener.get(), 4) != 0)
    return errno_error("cannot listen on 127.0.0.1", errno);
  at = local_address(listener.get());

  auto redirected = connect_pair(listener.get(), at);
  if (!redirected) return redirected.take_error();
  auto by_tcp = connect_pair(listener.get(), at);
  if (!by_tcp) return by_tcp.take_error();
  // Both ends of the redirected pair, only the receiver of the other one.
  for (int fd : {redirected->sender.get(), redirected->receiver.get(), by_tcp->receiver.get()})
    if (auto status = add_to_peers(peers, fd); !status) return status.take_error();

  UniqueFd epoll_fd(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd.valid()) return errno_error("epoll_create1", errno);
  ReceiveCheck* checks[2] = {&run.redirected, &run.tcp_path};
  const int receivers[2] = {redirected->receiver.get(), by_tcp->receiver.get()};
  for (uint32_t i = 0; i < 2; ++i) {
    epoll_event event{};
    event.events = EPOLLIN | EPOLLET;
    event.data.u32 = i;
    if (epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, receivers[i], &event) != 0)
      return errno_error("epoll_ctl", errno);
  }
  for (int sender : {redirected->sender.get(), by_tcp->sender.get()})
    if (send(sender, kPayload, kPayloadSize, MSG_NOSIGNAL) != kPayloadSize)
      return errno_error("send", errno);

  const auto deadline = Clock::now() + kPatience;
  collect_wakeups(epoll_fd.get(), checks, deadline);
  for (int i = 0; i < 2; ++i) inspect(receivers[i], *checks[i], deadline);
  if (programs->counters()[NETPROF_CNT_MSG_REDIRECTED] == 0)
    return Error{"sk_msg did not redirect the probe's bytes"};
  return run;
}

Expected<SkMsgRun> run_in_throwaway_netns(bool skb_pass) {
  std::optional<Expected<SkMsgRun>> result;
  // Its own thread: the netns switch dies with it, the caller's thread never moves.
  std::thread worker([&] {
    enter_throwaway_netns();  // if it fails: netprof's own netns, where lo is up as a rule
    result.emplace(run_once(skb_pass));
  });
  worker.join();
  return std::move(*result);
}

}  // namespace

std::string ReceiveCheck::describe() const {
  if (!arrived) return "the bytes did not arrive";
  std::string out = "FIONREAD " + std::to_string(fionread) + " of " + std::to_string(expected);
  out += pollin ? ", POLLIN" : ", no POLLIN";
  out += wakeup ? ", epoll wakeup" : ", no epoll wakeup";
  return out;
}

std::string SkMsgProbe::summary() const {
  if (!error.empty()) return "could not test: " + error;
  if (plain.ok()) return "redirected and TCP-path bytes: FIONREAD, POLLIN and wakeup right";
  if (!plain.redirected.ok())
    return "redirected bytes: " + plain.redirected.describe() + " (kernel without 929e30f93125)";
  if (needs_skb_pass())
    return "TCP-path bytes in a SOCKHASH without SK_SKB verdict: " + plain.tcp_path.describe() +
           " (kernel with 929e30f93125, without 04af4efde58a); right with netprof's no-op "
           "SK_SKB verdict, which netprof then attaches";
  return "TCP-path bytes in a SOCKHASH: " + plain.tcp_path.describe() +
         (tried_skb_pass ? "; with a no-op SK_SKB verdict: " + with_skb_pass.tcp_path.describe()
                         : std::string());
}

SkMsgProbe probe_skmsg_fionread() {
  SkMsgProbe probe;
  auto plain = run_in_throwaway_netns(false);
  if (!plain) {
    probe.error = plain.error();
    return probe;
  }
  probe.plain = *plain;
  if (probe.plain.redirected.ok() && !probe.plain.tcp_path.ok()) {
    auto with = run_in_throwaway_netns(true);
    probe.tried_skb_pass = true;
    if (with) probe.with_skb_pass = *with;
  }
  return probe;
}

const SkMsgProbe& skmsg_fionread_verdict() {
  static std::once_flag once;
  static SkMsgProbe probe;
  std::call_once(once, [] { probe = probe_skmsg_fionread(); });
  return probe;
}

}  // namespace netprof
