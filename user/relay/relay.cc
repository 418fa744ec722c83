#include "relay/relay.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/clock.h"
#include "http2/protocol_tracker.h"
#include "relay/buffer_pool.h"

namespace netprof {
namespace {

bool is_transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

PeerAddress peer_of(const sockaddr_storage& ss) {
  PeerAddress p;
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    p.family = AF_INET;
    p.port = ntohs(in.sin_port);
    std::memcpy(p.bytes, &in.sin_addr, 4);
  } else if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    p.family = AF_INET6;
    p.port = ntohs(in6.sin6_port);
    std::memcpy(p.bytes, &in6.sin6_addr, 16);
  }
  return p;
}

// What an epoll event points at.
enum class TagKind : uint8_t { kWakeup, kListener, kClient, kUpstream };
struct Connection;
struct Listener;
struct Tag {
  TagKind kind;
  Connection* connection = nullptr;
  Listener* listener = nullptr;
};

struct Listener {
  ListenerSpec spec;
  Tag tag{TagKind::kListener};
};

// Registered once, edge-triggered, for reading and writing: the loop keeps what the kernel
// said last in `readable` and `writable` instead of changing its interest (no epoll_ctl per
// pause, resume or request). `readable` is cleared by a read that returned less than asked
// (TCP then has nothing queued; new bytes or a FIN raise a new edge) and `writable` by a write
// that did not take everything (the kernel raises EPOLLOUT when space frees). A FIN that
// arrived with the last bytes raises no edge of its own: once EPOLLRDHUP (or a hangup) was
// seen, `readable` stays set until a read returns 0 or an error.
struct Endpoint {
  int fd = -1;
  bool readable = false;
  bool writable = false;
  bool fin_seen = false;
  bool error_seen = false;
  Tag tag;
};

// One direction of a relayed connection: bytes read from `from` and owed to `to`.
struct Pipe {
  PooledBuffer pending;  // read but not yet written; non-empty => reading `from` is paused
  bool eof = false;      // `from` sent FIN
  bool shut = false;     // FIN forwarded with shutdown(to, SHUT_WR)
  bool done() const { return eof && shut && pending.empty(); }
  // Holds (bytes kept in `pending` because `to` could not take them), for the exchanges'
  // timing: the read whose bytes began the last hold, when that hold ended (0 while it lasts),
  // and the time every ended hold took. Written only when a hold begins or ends.
  MonoNanos hold_read_at = 0;
  MonoNanos hold_from = 0;  // the read, or the upstream connect if the hold began before it
  MonoNanos hold_end = 0;
  MonoNanos held_total = 0;
};

struct Connection;

// Between a connection's tracker and the worker's sink: adds to each exchange what only the
// relay knows (connection id, client address, accept and connect times, when the request was
// really written upstream, how long bytes waited in the relay). One copy of the Exchange per
// exchange, no allocation.
class ConnectionSink final : public ExchangeSink {
 public:
  ConnectionSink(Connection& c, ExchangeSink& next) : c_(c), next_(next) {}
  void on_exchange(const Exchange& exchange) override;
  void on_unparsed_connection(uint32_t scope) override { next_.on_unparsed_connection(scope); }
  void on_untracked_stream(uint32_t scope) override { next_.on_untracked_stream(scope); }
  void on_tls_connection(const TlsConnection& connection) override {
    next_.on_tls_connection(connection);
  }

 private:
  Connection& c_;
  ExchangeSink& next_;
};

// Between a connection's tracker and the relay's sink when the loop is metered: each exchange
// takes the relay-added time its connection's reads gathered since the previous exchange
// (relay/loop_meter.h). One per connection, so no event needs to say whose it is.
struct AddedTimeSink final : ExchangeSink {
  AddedTimeSink(ExchangeSink& next_, LoopMeter* meter_) : next(next_), meter(meter_) {}
  void on_exchange(const Exchange& exchange) override {
    meter->record_added(added);
    added = 0;
    next.on_exchange(exchange);
  }
  void on_unparsed_connection(uint32_t scope) override { next.on_unparsed_connection(scope); }
  void on_untracked_stream(uint32_t scope) override { next.on_untracked_stream(scope); }
  void on_tls_connection(const TlsConnection& c) override { next.on_tls_connection(c); }
  ExchangeSink& next;
  LoopMeter* meter;
  MonoNanos added = 0;  // since the previous exchange; kept (unused) when not metered
};

struct Connection {
  Connection(uint64_t id_, uint32_t scope_, ExchangeSink& sink, LoopMeter* meter,
             const TrackerLimits& limits)
      : id(id_),
        scope(scope_),
        metered(sink, meter),
        forward(*this, meter != nullptr ? static_cast<ExchangeSink&>(metered) : sink),
        tracker(forward, scope_, limits) {
    client.tag = {TagKind::kClient, this};
    upstream.tag = {TagKind::kUpstream, this};
  }
  uint64_t id;
  uint32_t scope;
  AddedTimeSink metered;  // before the tracker, which holds a reference to it
  Endpoint client, upstream;
  Pipe to_upstream, to_client;
  bool connecting = true;
  bool closed = false;
  bool ambiguity_counted = false;
  bool first_exchange_sent = false;
  MonoNanos accepted = 0, connected = 0;
  MonoNanos held_reported = 0;  // the pipes' held_total when the previous exchange was emitted
  PeerAddress peer;
  ConnectionSink forward;
  ProtocolTracker tracker;  // HTTP/1, HTTP/2 or TLS, chosen from the first bytes
};

void ConnectionSink::on_exchange(const Exchange& exchange) {
  Exchange e = exchange;
  e.connection_id = c_.id;
  e.peer = c_.peer;
  e.accepted = c_.accepted;
  if (!c_.first_exchange_sent) e.upstream_connected = c_.connected;
  c_.first_exchange_sent = true;
  // Reading pauses while bytes are held, so the read that carried the request's last byte is
  // either the one that began the last hold (sent when it ended) or was written at once.
  const Pipe& up = c_.to_upstream;
  if (e.request_done != 0) {
    e.request_sent = up.hold_read_at == e.request_done ? up.hold_end : e.request_done;
  }
  const MonoNanos held = c_.to_upstream.held_total + c_.to_client.held_total;
  e.relay_held = held - c_.held_reported;
  c_.held_reported = held;
  next_.on_exchange(e);
}

}  // namespace

struct Relay::Impl {
  Impl(RelayOptions o, ExchangeSink& s, ConnectionCounters& c)
      : options(o),
        sink(s),
        counters(c),
        pool(o.buffer_bytes),
        scratch(o.buffer_bytes) {}

  RelayOptions options;
  ExchangeSink& sink;
  ConnectionCounters& counters;
  BufferPool pool;
  std::vector<char> scratch;  // every read lands here first; copied only under back-pressure

  MonoNanos woke = 0;  // when the current turn's epoll_wait returned
  // Tests only (stall_for_tests): set on the loop thread by a posted task.
  MonoNanos stall_per_turn = 0, stall_until = 0;
  int64_t stall_scope = -1;

  int epoll_fd = -1;
  int wakeup_fd = -1;
  Tag wakeup_tag{TagKind::kWakeup};
  int spare_fd = -1;  // released to accept-and-close when the process runs out of fds
  std::atomic<bool> stop_requested{false};
  std::mutex posted_mu;
  std::vector<std::function<void()>> posted;  // tasks for the loop thread
  bool draining = false;

  std::vector<std::unique_ptr<Listener>> listeners;
  // Removed listeners live until the end of the event batch that may still point at them.
  std::vector<std::unique_ptr<Listener>> retired_listeners;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections;
  std::vector<std::unique_ptr<Connection>> graveyard;  // freed after the current event batch
  std::deque<std::pair<MonoNanos, uint64_t>> connect_deadlines;  // FIFO: one timeout for all
  // Connections whose read filled the scratch buffer: more may be queued and no new edge will
  // say so. Read again next loop turn (one read per connection per turn, as for events).
  std::vector<uint64_t> read_again, read_again_now;
  uint64_t next_id = options.first_connection_id;

  // ---- epoll registration -------------------------------------------------------------

  void register_endpoint(Endpoint& ep) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &ep.tag;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, ep.fd, &ev);
  }

  // ---- connection lifecycle ------------------------------------------------------------

  void accept_from(Listener& listener) {
    for (int i = 0; i < 64; ++i) {  // bounded so one busy listener cannot starve the loop
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      const int fd = accept4(listener.spec.fd.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) shed_one_pending(listener.spec.fd.get());
        return;  // EAGAIN, or a transient error the next wakeup retries
      }
      counters.accepted.fetch_add(1, std::memory_order_relaxed);
      if (connections.size() >= options.max_connections) {
        counters.rejected.fetch_add(1, std::memory_order_relaxed);
        close(fd);
        continue;
      }
      start_connection(listener, fd, peer);
    }
  }

  // Out of fds: the pending connection would keep the level-triggered listener readable
  // forever. Give up the spare fd, accept and close the connection, take the spare back.
  void shed_one_pending(int listen_fd) {
    // Another thread may have taken the fd this one freed: take a spare again once one is free.
    if (spare_fd < 0) spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (spare_fd < 0) return;
    close(spare_fd);
    if (const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC); fd >= 0) {
      counters.accepted.fetch_add(1, std::memory_order_relaxed);
      counters.rejected.fetch_add(1, std::memory_order_relaxed);
      close(fd);
    }
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  // The client socket has TCP_NODELAY from its listener (add_listener sets it; Linux copies
  // it to accepted sockets).
  void start_connection(Listener& listener, int client_fd, const sockaddr_storage& peer) {
    const int one = 1;
    DialResult dial = listener.spec.dialer->dial(client_fd);
    if (!dial.fd.valid()) {
      counters.upstream_failed.fetch_add(1, std::memory_order_relaxed);
      const linger abort_on_close{1, 0};
      setsockopt(client_fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
      close(client_fd);
      return;
    }
    setsockopt(dial.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const uint64_t id = next_id;
    next_id += options.connection_id_step;
    auto conn =
        std::make_unique<Connection>(id, listener.spec.scope, sink, options.meter, options.tracker);
    conn->accepted = mono_nanos();
    conn->peer = peer_of(peer);
    conn->client.fd = client_fd;
    conn->client.writable = true;  // readable when registering says so (an edge on ADD)
    conn->upstream.fd = dial.fd.release();
    conn->tracker.set_server_port(dial.port);
    counters.active.fetch_add(1, std::memory_order_relaxed);
    connect_deadlines.emplace_back(
        conn->accepted + MonoNanos{options.connect_timeout_ms} * 1'000'000, id);
    register_endpoint(conn->client);
    register_endpoint(conn->upstream);
    connections.emplace(id, std::move(conn));
  }

  // EPOLLOUT alone means connected; only an error or hangup needs SO_ERROR to tell.
  // Returns false if the connection failed (and is closed).
  bool finish_connect(Connection& c, uint32_t events) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(c.upstream.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) {
        fail_upstream(c);
        return false;
      }
    }
    c.connecting = false;
    c.connected = mono_nanos();
    // The request waited for the connect: from here on it waits for the relay.
    if (!c.to_upstream.pending.empty()) c.to_upstream.hold_from = c.connected;
    return true;
  }

  // The client already sent its request perhaps: it counts on its route as failed. The
  // client's connection is reset: the nearest the relay can come to the refused connect it
  // would have seen without it (and a reset leaves no TIME_WAIT on the service's address).
  void fail_upstream(Connection& c) {
    counters.upstream_failed.fetch_add(1, std::memory_order_relaxed);
    c.tracker.on_upstream_failed(mono_nanos());
    close_connection(c, /*reset=*/true);
  }

  // Closes both sockets. With `reset`, the surviving side gets an RST (SO_LINGER 0), as it
  // would have seen one without the relay.
  void close_connection(Connection& c, bool reset) {
    if (c.closed) return;
    c.closed = true;
    c.tracker.on_connection_closed(mono_nanos(), reset);
    for (Endpoint* ep : {&c.client, &c.upstream}) {
      if (ep->fd < 0) continue;
      if (reset) {
        const linger abort_on_close{1, 0};
        setsockopt(ep->fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
      }
      close(ep->fd);  // also leaves the epoll set
      ep->fd = -1;
    }
    c.to_upstream.pending.release(pool);
    c.to_client.pending.release(pool);
    counters.active.fetch_sub(1, std::memory_order_relaxed);
    auto it = connections.find(c.id);
    graveyard.push_back(std::move(it->second));
    connections.erase(it);
  }

  void close_if_finished(Connection& c) {
    if (!c.closed && c.to_upstream.done() && c.to_client.done()) close_connection(c, false);
  }

  // ---- data path -----------------------------------------------------------------------

  // Does what each direction can do now, independently: write what is pending if the
  // receiver has room, then read once if nothing is pending. Never blocks one direction on
  // the other.
  void drive(Connection& c) {
    step(c, c.client, c.upstream, c.to_upstream, /*client_side=*/true);
    if (c.closed) return;
    step(c, c.upstream, c.client, c.to_client, /*client_side=*/false);
    if (c.closed) return;
    close_if_finished(c);
  }

  void step(Connection& c, Endpoint& from, Endpoint& to, Pipe& pipe, bool client_side) {
    const bool to_open = !(client_side && c.connecting);
    if (!pipe.pending.empty() && to_open && to.writable) {
      flush(c, pipe, to);
      if (c.closed) return;
    }
    forward_fin(c, to, pipe, client_side);
    if (pipe.pending.empty() && !pipe.eof && from.readable) {
      pump(c, from, to, pipe, client_side);
      if (c.closed) return;
      if (from.readable && !pipe.eof && pipe.pending.empty()) read_again.push_back(c.id);
    }
  }

  // Reads once from `from` and forwards to `to`; what `to` does not take is kept pending
  // (which pauses reading `from`).
  void pump(Connection& c, Endpoint& from, Endpoint& to, Pipe& pipe, bool client_side) {
    const ssize_t n = recv(from.fd, scratch.data(), scratch.size(), 0);
    const MonoNanos now = mono_nanos();
    c.metered.added += now - woke;  // the read's wait in this turn (relay/loop_meter.h)
    if (n > 0) {
      const bool drained = static_cast<size_t>(n) < scratch.size();
      if (drained && !from.fin_seen) from.readable = false;
      const std::span<const char> bytes(scratch.data(), static_cast<size_t>(n));
      if (client_side) {
        counters.bytes_client_to_server.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        c.tracker.on_client_bytes(bytes, now);
      } else {
        counters.bytes_server_to_client.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        c.tracker.on_server_bytes(bytes, now);
      }
      if (!c.ambiguity_counted && c.tracker.ambiguous_framing()) {
        c.ambiguity_counted = true;
        counters.ambiguous_framing.fetch_add(1, std::memory_order_relaxed);
      }
      size_t written = 0;
      if (!(client_side && c.connecting) && to.writable) {
        const ssize_t w = send(to.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (w < 0 && !is_transient(errno)) {
          close_connection(c, /*reset=*/true);
          return;
        }
        if (w > 0) written = static_cast<size_t>(w);
        if (written < bytes.size()) to.writable = false;  // full: EPOLLOUT comes when it frees
      }
      if (written < bytes.size()) {
        pipe.pending.assign(pool, bytes.subspan(written));
        pipe.hold_read_at = pipe.hold_from = now;
        pipe.hold_end = 0;
      }
      // The FIN is queued behind these bytes (EPOLLRDHUP came, no error) and the read took
      // everything: the next read could only return 0. Take it as read.
      if (drained && from.fin_seen && !from.error_seen) on_eof(c, to, pipe, client_side, now);
    } else if (n == 0) {
      on_eof(c, to, pipe, client_side, now);
    } else if (is_transient(errno)) {
      if (errno != EINTR) from.readable = false;  // nothing queued, not even a FIN
    } else {
      close_connection(c, /*reset=*/true);
    }
  }

  void on_eof(Connection& c, Endpoint& to, Pipe& pipe, bool client_side, MonoNanos now) {
    pipe.eof = true;
    if (client_side) {
      c.tracker.on_client_eof(now);
    } else {
      c.tracker.on_server_eof(now);
    }
    forward_fin(c, to, pipe, client_side);
  }

  void forward_fin(Connection& c, Endpoint& to, Pipe& pipe, bool client_side) {
    if (!pipe.eof || pipe.shut || !pipe.pending.empty()) return;
    if (client_side && c.connecting) return;  // sent once the upstream is connected
    pipe.shut = true;
    // The last FIN of the connection: close() (in close_if_finished, right after) sends it.
    // Both sides were read to their FIN, so no unread byte turns that close into a reset.
    if ((client_side ? c.to_client : c.to_upstream).done()) return;
    shutdown(to.fd, SHUT_WR);
  }

  // Writes what is pending towards `to`, until done or `to` is full.
  void flush(Connection& c, Pipe& pipe, Endpoint& to) {
    while (!pipe.pending.empty()) {
      const auto bytes = pipe.pending.view();
      const ssize_t w = send(to.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (is_transient(errno)) {
          to.writable = false;
          return;
        }
        close_connection(c, /*reset=*/true);
        return;
      }
      if (static_cast<size_t>(w) < bytes.size()) to.writable = false;
      pipe.pending.consume(pool, static_cast<size_t>(w));
      if (pipe.pending.empty()) {
        pipe.hold_end = mono_nanos();
        pipe.held_total += pipe.hold_end - pipe.hold_from;
      }
      if (!to.writable) return;
    }
  }

  void on_endpoint_event(Connection& c, bool is_client, uint32_t events) {
    Endpoint& self = is_client ? c.client : c.upstream;
    if (!is_client && c.connecting) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      if (!finish_connect(c, events)) return;
    }
    if ((events & EPOLLERR) && !(events & EPOLLIN)) {
      close_connection(c, /*reset=*/true);
      return;
    }
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) self.fin_seen = true;
    if (events & EPOLLERR) self.error_seen = true;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) self.readable = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) self.writable = true;
    drive(c);
  }

  // Connections whose last read filled the buffer: read them again (one read each).
  void serve_read_again() {
    read_again_now.swap(read_again);
    for (const uint64_t id : read_again_now) {
      auto it = connections.find(id);
      if (it != connections.end() && !it->second->closed) drive(*it->second);
    }
    read_again_now.clear();
  }

  // ---- timers ----------------------------------------------------------------------------

  void expire_connects(MonoNanos now) {
    while (!connect_deadlines.empty() && connect_deadlines.front().first <= now) {
      const uint64_t id = connect_deadlines.front().second;
      connect_deadlines.pop_front();
      auto it = connections.find(id);
      if (it != connections.end() && it->second->connecting) fail_upstream(*it->second);
    }
  }

  void run_posted() {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lock(posted_mu);
      tasks.swap(posted);
    }
    for (auto& task : tasks) task();
  }

  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(wakeup_fd, &one, sizeof one);
  }

  void begin_drain() {
    draining = true;
    for (auto& l : listeners) l->spec.fd.reset();  // queued, unaccepted connections are refused
    listeners.clear();
  }

  // While draining, a connection between exchanges is closed at once (a FIN each way, as a
  // server closes an idle keep-alive connection): only exchanges in flight get the drain
  // timeout. Nothing relayed is lost: both directions have written everything they read.
  void close_idle_connections() {
    std::vector<Connection*> idle;
    for (auto& [id, conn] : connections) {
      const Connection& c = *conn;
      if (!c.closed && c.to_upstream.pending.empty() && c.to_client.pending.empty() &&
          c.tracker.idle() && !has_unread(c.client) && !has_unread(c.upstream)) {
        idle.push_back(conn.get());
      }
    }
    for (Connection* c : idle) close_connection(*c, false);
  }

  // Bytes that arrived but were not read yet: a request the client sent just before the stop
  // is relayed, not cut off by a close.
  static bool has_unread(const Endpoint& ep) {
    int unread = 0;
    return ep.fd >= 0 && ioctl(ep.fd, FIONREAD, &unread) == 0 && unread > 0;
  }

  // The scope an event's work is charged to; false for the loop's own (wakeups). Runs before
  // the graveyard and retired listeners are freed, so every tag is still valid.
  static bool scope_of(const epoll_event& event, uint32_t& scope) {
    const auto* tag = static_cast<const Tag*>(event.data.ptr);
    switch (tag->kind) {
      case TagKind::kClient:
      case TagKind::kUpstream:
        scope = tag->connection->scope;
        return true;
      case TagKind::kListener:
        scope = tag->listener->spec.scope;
        return true;
      case TagKind::kWakeup:
        return false;
    }
    return false;
  }

  // Ends a turn for the meter: its length, and for a long turn who it was spent on (shared by
  // the number of events per scope; relay/loop_meter.h says why not per event).
  void meter_turn(const epoll_event* events, int n, MonoNanos now) {
    LoopMeter& meter = *options.meter;
    const MonoNanos turn = now - woke;
    if (turn >= LoopMeter::kChargeAbove && n > 0) {
      std::vector<std::pair<uint32_t, uint32_t>> per_scope;  // (scope, events): few per turn
      uint32_t total = 0;
      for (int i = 0; i < n; ++i) {
        uint32_t scope = 0;
        if (!scope_of(events[i], scope)) continue;
        ++total;
        auto it = std::find_if(per_scope.begin(), per_scope.end(),
                               [scope](const auto& p) { return p.first == scope; });
        if (it == per_scope.end()) per_scope.emplace_back(scope, 1);
        else ++it->second;
      }
      for (const auto& [scope, count] : per_scope) meter.charge(scope, turn * count / total);
    }
    meter.turn_ended(woke, now);
  }

  // Tests only: sleeps in a turn that handled the stalled scope (see Relay::stall_for_tests).
  void stall_turn(const epoll_event* events, int n) {
    if (mono_nanos() >= stall_until) {
      stall_until = 0;
      return;
    }
    bool hit = stall_scope < 0;
    for (int i = 0; i < n && !hit; ++i) {
      uint32_t scope = 0;
      hit = scope_of(events[i], scope) && static_cast<int64_t>(scope) == stall_scope;
    }
    if (hit) std::this_thread::sleep_for(std::chrono::nanoseconds(stall_per_turn));
  }

  int run() {
    MonoNanos drain_deadline = 0;
    std::vector<epoll_event> events(256);
    while (true) {
      if (stop_requested.load() && !draining) {
        begin_drain();
        drain_deadline = mono_nanos() + MonoNanos{options.drain_timeout_ms} * 1'000'000;
      }
      if (draining) close_idle_connections();
      if (draining && (connections.empty() || mono_nanos() >= drain_deadline)) break;

      const int timeout_ms = read_again.empty() ? 100 : 0;
      const int n =
          epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      woke = mono_nanos();
      if (options.meter) options.meter->turn_started(woke);
      for (int i = 0; i < n; ++i) {
        auto* tag = static_cast<Tag*>(events[i].data.ptr);
        switch (tag->kind) {
          case TagKind::kWakeup: {
            uint64_t value = 0;
            [[maybe_unused]] ssize_t r = read(wakeup_fd, &value, sizeof value);
            run_posted();
            break;
          }
          case TagKind::kListener:
            if (!draining && tag->listener->spec.fd.valid()) accept_from(*tag->listener);
            break;
          case TagKind::kClient:
          case TagKind::kUpstream: {
            Connection& c = *tag->connection;  // alive until the batch ends (graveyard)
            if (c.closed) break;
            on_endpoint_event(c, tag->kind == TagKind::kClient, events[i].events);
            break;
          }
        }
      }
      serve_read_again();
      if (stall_until != 0) stall_turn(events.data(), n);
      const MonoNanos now = mono_nanos();
      if (options.meter) meter_turn(events.data(), n, now);
      graveyard.clear();
      retired_listeners.clear();
      expire_connects(now);
      if (options.on_tick) options.on_tick(now);
    }
    // Whatever did not finish in time is closed; its pending requests count as errors.
    while (!connections.empty()) close_connection(*connections.begin()->second, false);
    graveyard.clear();
    return 0;
  }
};

Relay::Relay(RelayOptions options, ExchangeSink& sink, ConnectionCounters& counters)
    : impl_(std::make_unique<Impl>(options, sink, counters)) {
  impl_->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  impl_->wakeup_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  impl_->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &impl_->wakeup_tag;
  epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, impl_->wakeup_fd, &ev);
}

Relay::~Relay() {
  for (auto& [id, conn] : impl_->connections) {
    close(conn->client.fd);
    close(conn->upstream.fd);
  }
  impl_->listeners.clear();  // closes them
  for (int fd : {impl_->epoll_fd, impl_->wakeup_fd, impl_->spare_fd})
    if (fd >= 0) close(fd);
}

void Relay::add_listener(ListenerSpec spec) {
  auto listener = std::make_unique<Listener>();
  listener->spec = std::move(spec);
  listener->tag.listener = listener.get();
  // Accepted sockets inherit TCP_NODELAY: one call here instead of one per connection.
  const int one = 1;
  setsockopt(listener->spec.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &listener->tag;
  epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, listener->spec.fd.get(), &ev);
  impl_->listeners.push_back(std::move(listener));
}

ListenerId next_listener_id() {
  static std::atomic<uint64_t> next{1};
  return ListenerId{next.fetch_add(1, std::memory_order_relaxed)};
}

bool Relay::remove_listener(ListenerId id) {
  auto& all = impl_->listeners;
  for (auto it = all.begin(); it != all.end(); ++it) {
    if (!((*it)->spec.id == id)) continue;
    (*it)->spec.fd.reset();  // closed: leaves the epoll set; a fetched event for it is ignored
    impl_->retired_listeners.push_back(std::move(*it));
    all.erase(it);
    return true;
  }
  return false;
}

void Relay::post(std::function<void()> task) {
  {
    std::lock_guard lock(impl_->posted_mu);
    impl_->posted.push_back(std::move(task));
  }
  impl_->wake();
}

int Relay::run() { return impl_->run(); }

void Relay::stall_for_tests(MonoNanos per_turn, MonoNanos duration, int64_t scope) {
  Impl* impl = impl_.get();
  post([impl, per_turn, duration, scope] {
    impl->stall_per_turn = per_turn;
    impl->stall_until = duration > 0 ? mono_nanos() + duration : 0;
    impl->stall_scope = scope;
  });
}

void Relay::request_stop() {
  // Signal-safe: an atomic store and a write(2).
  impl_->stop_requested.store(true);
  impl_->wake();
}

UniqueFd listen_tcp(const SocketAddress& address, int backlog, bool reuse_port) {
  UniqueFd fd(socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd.valid()) return fd;
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd.get(), address.get(), address.length) != 0 || listen(fd.get(), backlog) != 0) {
    const int err = errno;
    fd.reset();
    errno = err;  // for the caller's message
  }
  return fd;
}

}  // namespace netprof
