#include "intercept/pod_dialers.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "intercept/socket_keys.h"
#include "base/unique_fd.h"

namespace netprof {
namespace {

// Room for every handshake in flight at about 4000 new connections/s for 15 s. The ring starts
// small and doubles up to this: a node has one per pod, most of them idle, and a full-size
// ring is 3.5 MiB.
constexpr size_t kGuardRingCapacity = NETPROF_MAX_PENDING;
constexpr size_t kGuardRingInitial = 64;
const __u8 kPresent = 1;

int new_socket_in_pod(const InterceptState& state, int family) {
  NetnsGuard in_pod(state.pod, state.home);
  if (!in_pod.entered()) {
    errno = in_pod.error();
    return -1;
  }
  return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

uint64_t socket_cookie(int fd) {
  uint64_t cookie = 0;
  socklen_t length = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &length) != 0) return 0;
  return cookie;
}

// connect() with `fd`'s cookie in guard_cookies, so connect4/6 do not send the relay's own
// upstream back into the relay when netprof runs inside the target cgroup.
int guarded_connect(const InterceptState& state, int fd, const SocketAddress& to) {
  uint64_t cookie = 0;
  if (state.outbound_active) {
    cookie = socket_cookie(fd);
    if (cookie == 0 ||
        bpf_map_update_elem(state.programs->guard_cookies_fd(), &cookie, &kPresent, BPF_ANY) != 0)
      return errno ? errno : EIO;
  }
  int result = 0;
  if (connect(fd, to.get(), to.length) != 0 && errno != EINPROGRESS) result = errno;
  if (cookie) bpf_map_delete_elem(state.programs->guard_cookies_fd(), &cookie);
  return result;
}

}  // namespace

InboundDialer::InboundDialer(std::shared_ptr<const InterceptState> state,
                             std::chrono::milliseconds guard_lifetime)
    : state_(std::move(state)), guard_lifetime_(guard_lifetime), ring_(kGuardRingInitial) {}

InboundDialer::~InboundDialer() {
  // The map dies with the last InterceptState reference, but the dialer may go first.
  for (; size_ > 0; --size_, head_ = (head_ + 1) % ring_.size())
    bpf_map_delete_elem(state_->programs->upstream_guard_fd(), &ring_[head_].key);
}

void InboundDialer::sweep(std::chrono::steady_clock::time_point now) {
  while (size_ > 0 && ring_[head_].expires <= now) {
    bpf_map_delete_elem(state_->programs->upstream_guard_fd(), &ring_[head_].key);
    head_ = (head_ + 1) % ring_.size();
    --size_;
  }
}

void InboundDialer::remember(const Pending& pending) {
  if (size_ == ring_.size() && ring_.size() < kGuardRingCapacity) {
    // Grow: the same entries, oldest first, in a ring twice the size.
    std::vector<Pending> bigger(std::min(ring_.size() * 2, kGuardRingCapacity));
    for (size_t i = 0; i < size_; ++i) bigger[i] = ring_[(head_ + i) % ring_.size()];
    ring_ = std::move(bigger);
    head_ = 0;
  }
  if (size_ == ring_.size()) {
    // Full: retire the oldest early. The LRU map would evict it at this rate anyway.
    bpf_map_delete_elem(state_->programs->upstream_guard_fd(), &ring_[head_].key);
    head_ = (head_ + 1) % ring_.size();
    --size_;
  }
  ring_[(head_ + size_) % ring_.size()] = pending;
  ++size_;
}

DialResult InboundDialer::dial(int client_fd) {
  const auto now = std::chrono::steady_clock::now();
  sweep(now);
  const SocketAddress original = local_address(client_fd);
  if (original.length == 0) return {UniqueFd(), errno ? errno : ENOTCONN};

  UniqueFd upstream(new_socket_in_pod(*state_, original.family()));
  if (!upstream.valid()) return {UniqueFd(), errno};
  // The source is the destination's own address (what the kernel would pick for a local
  // destination anyway); binding first makes the 4-tuple known before the SYN leaves.
  const SocketAddress source = with_port(original, 0);
  if (bind(upstream.get(), source.get(), source.length) != 0) return {UniqueFd(), errno};
  const SocketAddress bound = local_address(upstream.get());
  netprof_tuple tuple;
  if (bound.length == 0 || !make_tuple(original, bound, tuple)) return {UniqueFd(), EAFNOSUPPORT};
  const netprof_sock_key key = sock_key(state_->netns_cookie, tuple);
  if (bpf_map_update_elem(state_->programs->upstream_guard_fd(), &key, &kPresent, BPF_ANY) != 0)
    return {UniqueFd(), errno};
  remember({now + guard_lifetime_, key});

  if (const int err = guarded_connect(*state_, upstream.get(), original)) return {UniqueFd(), err};
  return {std::move(upstream), 0, original.port()};
}

bool lookup_original_destination(const InterceptState& state, int accepted_fd,
                                 SocketAddress& out) {
  netprof_tuple tuple;
  if (!socket_tuple(accepted_fd, tuple)) return false;
  const netprof_sock_key key = sock_key(state.netns_cookie, tuple);
  netprof_endpoint original;
  if (bpf_map_lookup_elem(state.programs->orig_dst_by_tuple_fd(), &key, &original) != 0)
    return false;
  bpf_map_delete_elem(state.programs->orig_dst_by_tuple_fd(), &key);
  out = endpoint_address(original);
  return out.length != 0;
}

OutboundDialer::OutboundDialer(std::shared_ptr<const InterceptState> state)
    : state_(std::move(state)) {}

DialResult OutboundDialer::dial(int client_fd) {
  SocketAddress original;
  if (!lookup_original_destination(*state_, client_fd, original)) return {UniqueFd(), EHOSTUNREACH};
  UniqueFd upstream(new_socket_in_pod(*state_, original.family()));
  if (!upstream.valid()) return {UniqueFd(), errno};
  if (const int err = guarded_connect(*state_, upstream.get(), original)) return {UniqueFd(), err};
  return {std::move(upstream), 0, original.port()};
}

}  // namespace netprof
