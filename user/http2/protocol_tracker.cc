#include "http2/protocol_tracker.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace netprof {
namespace {

// An HTTP/1 head (request or response) is looked at only this far; larger heads are not
// upgrade handshakes anyone sends.
constexpr size_t kMaxWatchedHeadBytes = 8 * 1024;
// Client bytes after the upgrade request, held until the server answers it (as the HTTP/1
// tracker does with its own copy).
constexpr size_t kMaxHeldAfterUpgrade = 64 * 1024;
// The first byte of a TLS connection: a handshake record (its ClientHello).
constexpr uint8_t kTlsHandshakeRecord = 0x16;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// True if the comma-separated header value lists `token` (case-insensitive).
bool lists_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// Calls fn(name, value) for each header line of an HTTP/1 head (request/status line skipped).
template <typename Fn>
void for_each_header(std::string_view head, Fn fn) {
  size_t eol = head.find('\n');
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 1);
    eol = head.find('\n');
    const std::string_view line = head.substr(0, eol);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos)
      fn(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
}

// Follows the first HTTP/1 request and its answer far enough to see an h2c upgrade happen.
struct UpgradeWatch {
  enum class Phase : uint8_t {
    kRequestHead,  // collecting the first request's head
    kRequestBody,  // it asked for h2c; skipping its Content-Length body
    kAwaitAnswer,  // request complete; client bytes after it are held
    kSwitched,     // 101 seen: HTTP/2 from here
    kOff,          // not an h2c upgrade (or no longer followable)
  };
  Phase phase = Phase::kRequestHead;
  std::string head;  // request head, then response head being collected
  uint64_t body_left = 0;
  std::string after;  // client bytes after the upgrade request
  MonoNanos after_at = 0;

  void off() {
    phase = Phase::kOff;
    std::string().swap(head);
    std::string().swap(after);
  }

  // Client bytes seen by the HTTP/1 tracker.
  void client(const char* p, size_t n, MonoNanos now) {
    while (n > 0) {
      switch (phase) {
        case Phase::kRequestHead: {
          // Usually the whole head is in the first read: look at it in place, copy nothing.
          if (head.empty()) {
            const std::string_view chunk(p, n);
            const size_t end = chunk.find("\r\n\r\n");
            if (end != std::string_view::npos) {
              if (!request_asks_h2c(chunk.substr(0, end + 4))) {
                off();
                return;
              }
              phase = Phase::kRequestBody;
              p += end + 4;
              n -= end + 4;
              break;
            }
          }
          const size_t old = head.size();
          head.append(p, std::min(n, kMaxWatchedHeadBytes - std::min(old, kMaxWatchedHeadBytes)));
          const size_t from = old >= 3 ? old - 3 : 0;
          const size_t end = head.find("\r\n\r\n", from);
          if (end == std::string::npos) {
            if (head.size() >= kMaxWatchedHeadBytes) off();
            return;
          }
          const size_t used = end + 4 - old;
          head.resize(end + 4);
          if (!request_asks_h2c(head)) {
            off();
            return;
          }
          head.clear();
          phase = Phase::kRequestBody;
          p += used;
          n -= used;
          break;
        }
        case Phase::kRequestBody: {
          const size_t take = static_cast<size_t>(std::min<uint64_t>(n, body_left));
          body_left -= take;
          p += take;
          n -= take;
          if (body_left == 0) phase = Phase::kAwaitAnswer;
          break;
        }
        case Phase::kAwaitAnswer:
          if (after.size() + n > kMaxHeldAfterUpgrade) {
            off();
            return;
          }
          if (after.empty()) after_at = now;
          after.append(p, n);
          return;
        default:
          return;
      }
    }
  }

  bool request_asks_h2c(std::string_view request_head) {
    bool h2c = false, chunked = false;
    uint64_t length = 0;
    for_each_header(request_head, [&](std::string_view name, std::string_view value) {
      if (iequals(name, "upgrade") && lists_token(value, "h2c")) h2c = true;
      if (iequals(name, "transfer-encoding")) chunked = true;
      if (iequals(name, "content-length")) {
        length = 0;
        for (char c : value) {
          if (c < '0' || c > '9' || length > (uint64_t{1} << 40)) return;
          length = length * 10 + static_cast<uint64_t>(c - '0');
        }
      }
    });
    body_left = length;
    return h2c && !chunked;  // a chunked upgrade request is left to HTTP/1 (not seen in practice)
  }

  // Server bytes: returns the offset just past a 101 head, if this chunk completes one.
  std::optional<size_t> server(const char* p, size_t n) {
    if (phase != Phase::kAwaitAnswer && phase != Phase::kRequestBody) return std::nullopt;
    size_t offset = 0;
    while (offset < n) {
      const size_t old = head.size();
      const size_t take =
          std::min(n - offset, kMaxWatchedHeadBytes - std::min(old, kMaxWatchedHeadBytes));
      head.append(p + offset, take);
      const size_t end = head.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
      if (end == std::string::npos) {
        if (head.size() >= kMaxWatchedHeadBytes) off();
        return std::nullopt;
      }
      offset += end + 4 - old;
      int status = 0;
      if (head.size() >= 12 && head.compare(0, 5, "HTTP/") == 0 && head[8] == ' ') {
        for (size_t i = 9; i < 12 && head[i] >= '0' && head[i] <= '9'; ++i)
          status = status * 10 + (head[i] - '0');
      }
      head.clear();
      if (status == 101) {
        phase = Phase::kSwitched;
        return offset;
      }
      if (status < 100 || status >= 200) {  // a final answer: the upgrade was refused
        off();
        return std::nullopt;
      }
      // 100 Continue, 103: the answer is still to come
    }
    return std::nullopt;
  }
};

// Passes exchanges on, except the HTTP/1 101 of an h2c upgrade, whose request is kept to
// become HTTP/2 stream 1.
class SwitchFilter final : public ExchangeSink {
 public:
  explicit SwitchFilter(ExchangeSink& next) : next_(next) {}
  void on_exchange(const Exchange& ex) override {
    if (catch_switch_ && ex.status == 101 && ex.outcome == ExchangeOutcome::kCompleted) {
      catch_switch_ = false;
      path_.assign(ex.path);
      caught_ = UpgradedRequest{ex.method,
                                {},
                                ex.path_truncated,
                                ex.request_first_byte,
                                ex.request_headers_done,
                                ex.request_bytes,
                                ex.request_body_bytes};
      return;
    }
    next_.on_exchange(ex);
  }
  void on_unparsed_connection(uint32_t scope) override { next_.on_unparsed_connection(scope); }
  void on_untracked_stream(uint32_t scope) override { next_.on_untracked_stream(scope); }

  void catch_switch() { catch_switch_ = true; }
  // The caught request, if any; its path points into the filter.
  std::optional<UpgradedRequest> caught() {
    catch_switch_ = false;
    if (!caught_) return std::nullopt;
    UpgradedRequest r = *caught_;
    r.path = path_;
    return r;
  }

 private:
  ExchangeSink& next_;
  bool catch_switch_ = false;
  std::optional<UpgradedRequest> caught_;
  std::string path_;
};

}  // namespace

struct ProtocolTracker::Impl {
  Impl(ExchangeSink& s, uint32_t sc, const TrackerLimits& l)
      : sink(s), scope(sc), limits(l), filter(s) {}

  ExchangeSink& sink;
  const uint32_t scope;
  const TrackerLimits limits;
  SwitchFilter filter;
  WireChoice choice = WireChoice::kUndecided;
  std::optional<HttpTracker> h1;
  std::unique_ptr<Http2Tracker> h2;
  std::unique_ptr<TlsTracker> tls;
  uint16_t server_port = 0;
  UpgradeWatch watch;

  // While undecided: how much of the preface the client sent, and held server bytes.
  size_t preface_seen = 0;
  MonoNanos preface_at = 0;
  std::string held_server;
  MonoNanos held_server_at = 0;

  Http2Limits h2_limits() const {
    Http2Limits l;
    l.max_path_bytes = limits.max_path_bytes;
    l.trace_ids = limits.trace_ids;
    return l;
  }

  void start_h1() {
    choice = WireChoice::kHttp1;
    h1.emplace(filter, scope, limits);
    // Held server bytes and the start of a preface are replayed in the order they arrived:
    // a server that spoke first must not be paired as the answer to a later request.
    if (!held_server.empty() && (preface_seen == 0 || held_server_at < preface_at))
      replay_server();
    if (preface_seen > 0) feed_h1_client(kHttp2Preface.substr(0, preface_seen), preface_at);
    replay_server();
  }

  void start_h2() {
    choice = WireChoice::kHttp2;
    std::string().swap(watch.head);
    watch.phase = UpgradeWatch::Phase::kOff;
    h2 = std::make_unique<Http2Tracker>(sink, scope, h2_limits());
    h2->on_client_bytes(kHttp2Preface, preface_at);
    replay_server();
  }

  void start_tls() {
    choice = WireChoice::kTls;
    watch.off();
    tls = std::make_unique<TlsTracker>(sink, scope, server_port);
  }

  void replay_server() {
    if (held_server.empty()) return;
    std::string replay;
    replay.swap(held_server);
    on_server(replay, held_server_at);
  }

  void feed_h1_client(std::string_view bytes, MonoNanos now) {
    if (watch.phase != UpgradeWatch::Phase::kOff) watch.client(bytes.data(), bytes.size(), now);
    h1->on_client_bytes(bytes, now);
  }

  void on_client(std::string_view bytes, MonoNanos now) {
    if (bytes.empty()) return;
    if (choice == WireChoice::kUndecided && preface_seen == 0 &&
        static_cast<uint8_t>(bytes.front()) == kTlsHandshakeRecord) {
      start_tls();
      tls->on_client_bytes(bytes, now);
      replay_server();
      return;
    }
    if (choice == WireChoice::kTls) {
      tls->on_client_bytes(bytes, now);
      return;
    }
    if (choice == WireChoice::kUndecided) {
      const size_t take = std::min(bytes.size(), kHttp2Preface.size() - preface_seen);
      if (bytes.compare(0, take, kHttp2Preface.substr(preface_seen, take)) != 0) {
        start_h1();
        feed_h1_client(bytes, now);
        return;
      }
      if (preface_seen == 0) preface_at = now;
      preface_seen += take;
      bytes.remove_prefix(take);
      if (preface_seen < kHttp2Preface.size()) return;
      start_h2();
    }
    if (choice == WireChoice::kHttp2) {
      h2->on_client_bytes(bytes, now);
    } else if (!bytes.empty()) {
      feed_h1_client(bytes, now);
    }
  }

  void on_server(std::string_view bytes, MonoNanos now) {
    if (bytes.empty()) return;
    switch (choice) {
      case WireChoice::kUndecided:
        if (held_server.size() + bytes.size() > ProtocolTracker::kMaxHeldServerBytes) {
          start_h1();
          on_server(bytes, now);
          return;
        }
        if (held_server.empty()) held_server_at = now;
        held_server.append(bytes);
        return;
      case WireChoice::kHttp2:
        h2->on_server_bytes(bytes, now);
        return;
      case WireChoice::kTls:
        tls->on_server_bytes(bytes, now);
        return;
      case WireChoice::kHttp1:
        break;
    }
    std::optional<size_t> switch_at;
    if (watch.phase != UpgradeWatch::Phase::kOff)
      switch_at = watch.server(bytes.data(), bytes.size());
    if (!switch_at) {
      h1->on_server_bytes(bytes, now);
      return;
    }
    filter.catch_switch();
    h1->on_server_bytes(bytes.substr(0, *switch_at), now);
    std::optional<UpgradedRequest> request = filter.caught();
    if (h1->mode() != TrackerMode::kPassthrough || !request) {
      // The HTTP/1 tracker did not see this 101 as the answer to the upgrade: leave it be.
      watch.off();
      h1->on_server_bytes(bytes.substr(*switch_at), now);
      return;
    }
    choice = WireChoice::kHttp2;
    h2 = std::make_unique<Http2Tracker>(sink, scope, h2_limits());
    h2->begin_upgraded(*request);
    h1.reset();
    std::string after;
    after.swap(watch.after);
    watch.off();
    if (!after.empty()) h2->on_client_bytes(after, watch.after_at);
    h2->on_server_bytes(bytes.substr(*switch_at), now);
  }
};

ProtocolTracker::ProtocolTracker(ExchangeSink& sink, uint32_t scope, const TrackerLimits& limits)
    : impl_(std::make_unique<Impl>(sink, scope, limits)) {}

ProtocolTracker::~ProtocolTracker() = default;

void ProtocolTracker::on_client_bytes(std::span<const char> bytes, MonoNanos now) {
  impl_->on_client({bytes.data(), bytes.size()}, now);
}

void ProtocolTracker::on_server_bytes(std::span<const char> bytes, MonoNanos now) {
  impl_->on_server({bytes.data(), bytes.size()}, now);
}

void ProtocolTracker::on_server_eof(MonoNanos now) {
  Impl& t = *impl_;
  if (t.choice == WireChoice::kUndecided) t.start_h1();
  if (t.h1) t.h1->on_server_eof(now);
}

void ProtocolTracker::on_client_eof(MonoNanos now) {
  Impl& t = *impl_;
  if (t.choice == WireChoice::kUndecided) t.start_h1();
  if (t.h1) t.h1->on_client_eof(now);
}

void ProtocolTracker::on_connection_closed(MonoNanos now, bool reset) {
  Impl& t = *impl_;
  if (t.choice == WireChoice::kUndecided) t.start_h1();
  if (t.h1) t.h1->on_connection_closed(now, reset);
  if (t.h2) t.h2->on_connection_closed(now, reset);
  if (t.tls) t.tls->on_connection_closed(now, reset);
}

void ProtocolTracker::on_upstream_failed(MonoNanos now) {
  Impl& t = *impl_;
  if (t.choice == WireChoice::kUndecided) t.start_h1();
  if (t.h1) t.h1->on_upstream_failed(now);
  if (t.h2) t.h2->on_upstream_failed(now);
  if (t.tls) t.tls->on_upstream_failed(now);
}

void ProtocolTracker::set_server_port(uint16_t port) {
  impl_->server_port = port;
  if (impl_->tls) impl_->tls->set_server_port(port);
}

WireChoice ProtocolTracker::choice() const { return impl_->choice; }

bool ProtocolTracker::ambiguous_framing() const {
  return impl_->h1 && impl_->h1->ambiguous_framing();
}

bool ProtocolTracker::idle() const {
  const Impl& t = *impl_;
  if (t.tls) return false;  // opaque after the handshake: nobody knows where a request ends
  if (t.h2) return t.h2->idle();
  if (t.h1) return t.h1->idle();
  return t.preface_seen == 0 && t.held_server.empty();
}

TrackerMode ProtocolTracker::mode() const {
  if (impl_->tls)
    return impl_->tls->unparsed() ? TrackerMode::kUnparsed : TrackerMode::kPassthrough;
  if (impl_->h2) return impl_->h2->mode();
  if (impl_->h1) return impl_->h1->mode();
  return TrackerMode::kHttp;
}

}  // namespace netprof
