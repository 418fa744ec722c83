#include "http2/tracker.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/http_names.h"
#include "http/trace_id.h"

namespace netprof {
namespace {

// RFC 9113 section 6: frame types and flags the tracker acts on.
enum FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
constexpr uint8_t kFlagEndStream = 0x1;
constexpr uint8_t kFlagEndHeaders = 0x4;
constexpr uint8_t kFlagPadded = 0x8;
constexpr uint8_t kFlagPriority = 0x20;
constexpr uint16_t kSettingsHeaderTableSize = 0x1;
constexpr size_t kFrameHeaderBytes = 9;
constexpr size_t kDefaultHeaderTable = 4096;  // RFC 7541 4.2: the table size before SETTINGS

uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// A small non-negative decimal (":status", "grpc-status"); -1 if it is not one.
int parse_small_int(std::string_view s) {
  if (s.empty() || s.size() > 5) return -1;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// What the header block being decoded means for its stream.
enum class Block : uint8_t {
  kIgnore,   // untracked stream, push promise, push response
  kRequest,  // the request's header block
  kRequestTrailers,
  kResponse,          // a response header block (interim 1xx or final)
  kResponseTrailers,  // after the final response: trailers (grpc-status)
};

struct Stream {
  Exchange ex;
  std::string path;
  bool request_headers_done = false;
  bool final_response = false;
  bool bad_method = false;  // a :method llhttp does not know: dropped at the end of the block
  TraceIdSlot trace;        // a trace id from the request's header block
};

// One direction's reader: frame header, position within the payload, header-block state.
struct Direction {
  explicit Direction(bool c) : client(c) {}
  ~Direction() {
    if (inflater != nullptr) nghttp2_hd_inflate_del(inflater);
  }
  Direction(const Direction&) = delete;
  Direction& operator=(const Direction&) = delete;

  const bool client;
  nghttp2_hd_inflater* inflater = nullptr;
  size_t table_limit = kDefaultHeaderTable;   // the inflater's current bound
  size_t table_wanted = kDefaultHeaderTable;  // from the peer's SETTINGS; applied between blocks
  size_t preface_seen = 0;                    // client only

  uint8_t head[kFrameHeaderBytes] = {};
  size_t head_have = 0;
  uint32_t length = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t sid = 0;
  uint32_t pos = 0;  // payload bytes consumed
  // Whether the frame's bytes count towards its stream's exchange; they do as they arrive,
  // never by the declared length up front: a connection may end inside a frame.
  bool counts_for_stream = false;
  bool layout_known = false;
  uint32_t content_begin = 0, content_end = 0;  // the payload without pad length, prefix, padding
  uint8_t small[8] = {};                        // SETTINGS entry / GOAWAY head being collected
  size_t small_have = 0;

  bool in_block = false;  // a header block awaits CONTINUATION
  uint32_t block_sid = 0;
  Block block = Block::kIgnore;
  bool block_end_stream = false;
  int block_status = 0;
};

}  // namespace

struct Http2Tracker::Impl {
  Impl(ExchangeSink& s, uint32_t sc, const Http2Limits& l) : sink(s), scope(sc), limits(l) {
    if (nghttp2_hd_inflate_new(&client.inflater) != 0 ||
        nghttp2_hd_inflate_new(&server.inflater) != 0) {
      mode = TrackerMode::kUnparsed;  // out of memory: relay on, count it as unparsed
      unparsed_pending = true;
    }
  }

  ExchangeSink& sink;
  const uint32_t scope;
  const Http2Limits limits;
  Direction client{true};
  Direction server{false};
  std::unordered_map<uint32_t, Stream> streams;
  uint32_t last_client_sid = 0;
  uint64_t untracked = 0;
  TrackerMode mode = TrackerMode::kHttp;
  bool unparsed_pending = false;
  bool closed = false;
  MonoNanos last_event = 0;  // the latest event's time: when a stream given up was given up

  // ---- feeding -------------------------------------------------------------------------

  void feed(Direction& d, const uint8_t* p, size_t n, MonoNanos now) {
    last_event = now;
    if (unparsed_pending) fail();
    if (mode != TrackerMode::kHttp) return;
    if (d.client && d.preface_seen < kHttp2Preface.size()) {
      const size_t take = std::min(n, kHttp2Preface.size() - d.preface_seen);
      if (std::memcmp(p, kHttp2Preface.data() + d.preface_seen, take) != 0) {
        fail();
        return;
      }
      d.preface_seen += take;
      p += take;
      n -= take;
    }
    while (n > 0 && mode == TrackerMode::kHttp) {
      if (d.head_have < kFrameHeaderBytes) {
        const size_t take = std::min(n, kFrameHeaderBytes - d.head_have);
        std::memcpy(d.head + d.head_have, p, take);
        d.head_have += take;
        p += take;
        n -= take;
        if (d.head_have == kFrameHeaderBytes) {
          start_frame(d, now);
          if (mode == TrackerMode::kHttp && d.length == 0) end_frame(d, now);
        }
        continue;
      }
      const size_t take = std::min<size_t>(n, d.length - d.pos);
      if (d.counts_for_stream) add_bytes(d, d.sid, take);
      payload(d, p, take, now);
      p += take;
      n -= take;
      if (mode == TrackerMode::kHttp && d.pos == d.length) end_frame(d, now);
    }
  }

  void start_frame(Direction& d, MonoNanos now) {
    d.length = uint32_t{d.head[0]} << 16 | uint32_t{d.head[1]} << 8 | d.head[2];
    d.type = d.head[3];
    d.flags = d.head[4];
    d.sid = be32(d.head + 5) & 0x7fffffffu;
    d.pos = 0;
    d.small_have = 0;
    // A header block is one sequence of frames: anything between its HEADERS and the
    // CONTINUATION that ends it is a connection error (RFC 9113 6.10).
    if (d.in_block != (d.type == kContinuation) || (d.in_block && d.sid != d.block_sid)) {
      fail();
      return;
    }
    const bool stream_frame = d.type == kData || d.type == kHeaders || d.type == kPriority ||
                              d.type == kRstStream || d.type == kPushPromise ||
                              d.type == kContinuation;
    const bool connection_frame = d.type == kSettings || d.type == kPing || d.type == kGoaway;
    if ((stream_frame && d.sid == 0) || (connection_frame && d.sid != 0)) {
      fail();
      return;
    }
    uint32_t prefix = 0;
    if (d.type == kHeaders && (d.flags & kFlagPriority)) prefix = 5;
    if (d.type == kPushPromise) prefix = 4;
    const bool padded = (d.type == kData || d.type == kHeaders || d.type == kPushPromise) &&
                        (d.flags & kFlagPadded);
    if (padded) {
      if (d.length < 1 + prefix) {
        fail();
        return;
      }
      d.layout_known = false;  // the first payload byte gives the pad length
    } else {
      if (d.length < prefix) {
        fail();
        return;
      }
      d.layout_known = true;
      d.content_begin = prefix;
      d.content_end = d.length;
    }

    // HEADERS, CONTINUATION and DATA frames are their stream's wire bytes: the header now,
    // the payload as it arrives (feed()).
    d.counts_for_stream = d.type == kHeaders || d.type == kContinuation || d.type == kData;
    switch (d.type) {
      case kHeaders:
        begin_block(d, now);
        add_bytes(d, d.sid, kFrameHeaderBytes);
        break;
      case kPushPromise:
        d.in_block = true;
        d.block_sid = d.sid;
        d.block = Block::kIgnore;
        d.block_end_stream = false;
        apply_table_limit(d);
        break;
      case kContinuation:
      case kData:
        add_bytes(d, d.sid, kFrameHeaderBytes);
        break;
      case kSettings:
        if (d.length % 6 != 0) fail();
        break;
      default:
        break;
    }
  }

  void payload(Direction& d, const uint8_t* p, size_t n, MonoNanos now) {
    while (n > 0 && mode == TrackerMode::kHttp) {
      if (!d.layout_known) {
        const uint32_t pad = p[0];
        const uint32_t prefix = d.type == kPushPromise                              ? 4
                                : (d.type == kHeaders && (d.flags & kFlagPriority)) ? 5
                                                                                    : 0;
        if (1 + prefix + pad > d.length) {
          fail();
          return;
        }
        d.content_begin = 1 + prefix;
        d.content_end = d.length - pad;
        d.layout_known = true;
        d.pos = 1;
        ++p;
        --n;
        continue;
      }
      size_t take = n;
      if (d.pos < d.content_begin) {
        take = std::min<size_t>(n, d.content_begin - d.pos);  // pad length, priority, promised id
      } else if (d.pos < d.content_end) {
        take = std::min<size_t>(n, d.content_end - d.pos);
        content(d, p, take, now);
      }  // else padding: skipped
      d.pos += static_cast<uint32_t>(take);
      p += take;
      n -= take;
    }
  }

  void content(Direction& d, const uint8_t* p, size_t n, MonoNanos now) {
    switch (d.type) {
      case kData:
        if (Stream* s = find(d.sid)) {
          (d.client ? s->ex.request_body_bytes : s->ex.response_body_bytes) += n;
        }
        break;
      case kHeaders:
      case kContinuation:
      case kPushPromise:
        inflate(d, p, n, false, now);
        break;
      case kSettings:
        for (size_t i = 0; i < n; ++i) {
          d.small[d.small_have++] = p[i];
          if (d.small_have == 6) {
            setting(d, static_cast<uint16_t>(d.small[0] << 8 | d.small[1]), be32(d.small + 2));
            d.small_have = 0;
          }
        }
        break;
      case kGoaway:
        for (size_t i = 0; i < n && d.small_have < 8; ++i) d.small[d.small_have++] = p[i];
        break;
      default:
        break;
    }
  }

  void end_frame(Direction& d, MonoNanos now) {
    d.head_have = 0;
    switch (d.type) {
      case kData:
        if (d.flags & kFlagEndStream) end_stream(d, d.sid, now);
        break;
      case kHeaders:
      case kContinuation:
      case kPushPromise:
        if (d.flags & kFlagEndHeaders) {
          inflate(d, nullptr, 0, true, now);
          if (mode == TrackerMode::kHttp) end_block(d, now);
        }
        break;
      case kRstStream:
        reset_stream(d.sid);
        break;
      case kGoaway:
        // A server's GOAWAY names the last client stream it processed; later ones never will be.
        if (!d.client && d.small_have == 8) goaway(be32(d.small) & 0x7fffffffu);
        break;
      default:
        break;
    }
  }

  // ---- HPACK ---------------------------------------------------------------------------------

  // A peer's SETTINGS_HEADER_TABLE_SIZE bounds the table of the header blocks it *receives*:
  // the client's bounds the responses' table, the server's the requests'. The bound is only
  // raised (the encoder must announce any shrink in the block itself, and the moment a smaller
  // setting takes effect is not visible to an observer), and capped to bound memory.
  void setting(Direction& from, uint16_t id, uint32_t value) {
    if (id != kSettingsHeaderTableSize) return;
    Direction& decoded = from.client ? server : client;
    const size_t wanted = std::min<size_t>(value, limits.max_header_table_bytes);
    decoded.table_wanted = std::max(decoded.table_wanted, wanted);
  }

  void apply_table_limit(Direction& d) {
    if (d.table_wanted <= d.table_limit) return;
    if (nghttp2_hd_inflate_change_table_size(d.inflater, d.table_wanted) != 0) {
      fail();
      return;
    }
    d.table_limit = d.table_wanted;
  }

  void inflate(Direction& d, const uint8_t* p, size_t n, bool final, MonoNanos now) {
    (void)now;
    for (;;) {
      nghttp2_nv nv{};
      int flags = 0;
      const ssize_t used = nghttp2_hd_inflate_hd2(d.inflater, &nv, &flags, p, n, final ? 1 : 0);
      if (used < 0) {
        fail();
        return;
      }
      p += used;
      n -= static_cast<size_t>(used);
      if (flags & NGHTTP2_HD_INFLATE_EMIT) {
        header(d, {reinterpret_cast<const char*>(nv.name), nv.namelen},
               {reinterpret_cast<const char*>(nv.value), nv.valuelen});
      }
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(d.inflater);
        return;
      }
      if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && n == 0) {
        if (final) fail();  // the block ended in the middle of a field
        return;
      }
    }
  }

  void header(Direction& d, std::string_view name, std::string_view value) {
    if (d.block == Block::kIgnore) return;
    Stream* s = find(d.block_sid);
    if (s == nullptr) return;  // reset by the other direction meanwhile
    switch (d.block) {
      case Block::kRequest:
        if (name == ":method") {
          const int m = http_method_from_name(value);
          s->bad_method = m < 0;
          s->ex.method = static_cast<uint8_t>(m < 0 ? 0 : m);
        } else if (name == ":path") {
          const size_t room =
              limits.max_path_bytes - std::min(s->path.size(), limits.max_path_bytes);
          if (value.size() > room) s->ex.path_truncated = true;
          s->path.assign(value.substr(0, room));
        } else if (name == "content-type") {
          s->ex.grpc = starts_with_nocase(value, "application/grpc");
        } else if (limits.trace_ids && !name.empty() && (name[0] == 't' || name[0] == 'x')) {
          s->trace.offer(trace_source_of(name), value);  // HPACK names are lower case
        }
        break;
      case Block::kResponse:
        if (name == ":status") {
          d.block_status = parse_small_int(value);
        } else if (name == "grpc-status") {
          grpc_status(*s, value);
        }
        break;
      case Block::kResponseTrailers:
        if (name == "grpc-status") grpc_status(*s, value);
        break;
      default:
        break;
    }
  }

  static void grpc_status(Stream& s, std::string_view value) {
    const int v = parse_small_int(value);
    if (v >= 0 && v <= 255) s.ex.grpc_status = static_cast<int16_t>(v);
  }

  // ---- streams -------------------------------------------------------------------------------

  Stream* find(uint32_t sid) {
    auto it = streams.find(sid);
    return it == streams.end() ? nullptr : &it->second;
  }

  void add_bytes(Direction& d, uint32_t sid, uint64_t bytes) {
    if (Stream* s = find(sid)) (d.client ? s->ex.request_bytes : s->ex.response_bytes) += bytes;
  }

  Stream* open_stream(uint32_t sid, MonoNanos now) {
    if (streams.size() >= limits.max_streams) {
      ++untracked;
      sink.on_untracked_stream(scope);
      return nullptr;
    }
    Stream& s = streams[sid];
    s.ex.scope = scope;
    s.ex.protocol = WireProtocol::kHttp2;
    s.ex.http_major = 2;
    s.ex.http_minor = 0;
    s.ex.request_first_byte = now;
    s.ex.sequence = (sid + 1) / 2;  // client streams are odd and numbered in order
    return &s;
  }

  void begin_block(Direction& d, MonoNanos now) {
    d.in_block = true;
    d.block_sid = d.sid;
    d.block_end_stream = (d.flags & kFlagEndStream) != 0;
    d.block_status = 0;
    d.block = Block::kIgnore;
    apply_table_limit(d);
    Stream* s = find(d.sid);
    if (d.client) {
      if (s != nullptr) {
        if (s->request_headers_done) d.block = Block::kRequestTrailers;
      } else if ((d.sid & 1) != 0 && d.sid > last_client_sid) {
        // A new client stream; ids only grow, so an older id is a closed stream's late frame.
        last_client_sid = d.sid;
        if (open_stream(d.sid, now) != nullptr) d.block = Block::kRequest;
      }
    } else if (s != nullptr) {
      d.block = s->final_response ? Block::kResponseTrailers : Block::kResponse;
    }
  }

  void end_block(Direction& d, MonoNanos now) {
    d.in_block = false;
    Stream* s = find(d.block_sid);
    if (s == nullptr || d.block == Block::kIgnore) return;
    switch (d.block) {
      case Block::kRequest:
        if (s->bad_method) {  // nothing to name it by; honest count instead of a wrong method
          streams.erase(d.block_sid);
          ++untracked;
          sink.on_untracked_stream(scope);
          return;
        }
        s->request_headers_done = true;
        s->ex.request_headers_done = now;
        if (d.block_end_stream) s->ex.request_done = now;
        break;
      case Block::kRequestTrailers:
        if (d.block_end_stream) s->ex.request_done = now;
        break;
      case Block::kResponse:
        if (d.block_status >= 100 && d.block_status < 200 && !d.block_end_stream) break;  // 1xx
        s->final_response = true;
        s->ex.status = static_cast<uint16_t>(d.block_status < 0 ? 0 : d.block_status);
        s->ex.response_headers_done = now;
        if (d.block_end_stream) complete(d.block_sid, now);
        break;
      case Block::kResponseTrailers:
        if (d.block_end_stream) complete(d.block_sid, now);
        break;
      case Block::kIgnore:
        break;
    }
  }

  void end_stream(Direction& d, uint32_t sid, MonoNanos now) {
    Stream* s = find(sid);
    if (s == nullptr) return;
    if (d.client) {
      s->ex.request_done = now;
    } else if (s->final_response) {
      complete(sid, now);
    }
  }

  void complete(uint32_t sid, MonoNanos now) {
    auto it = streams.find(sid);
    it->second.ex.response_done = now;
    emit(it->second, ExchangeOutcome::kCompleted);
    streams.erase(it);
  }

  void reset_stream(uint32_t sid) {
    auto it = streams.find(sid);
    if (it == streams.end()) return;
    if (it->second.request_headers_done) emit(it->second, ExchangeOutcome::kResetBeforeResponse);
    streams.erase(it);
  }

  void goaway(uint32_t last_processed) {
    for (uint32_t sid : sorted_ids()) {
      if (sid > last_processed) reset_stream(sid);
    }
  }

  void emit(Stream& s, ExchangeOutcome outcome) {
    Exchange& ex = s.ex;
    ex.outcome = outcome;
    ex.path = s.path;
    ex.trace_id = s.trace.view();
    ex.reason = {};
    if (outcome != ExchangeOutcome::kCompleted) {
      ex.status = 0;  // as the HTTP/1 tracker does
      ex.ended = last_event;
    }
    sink.on_exchange(ex);
  }

  std::vector<uint32_t> sorted_ids() const {
    std::vector<uint32_t> ids;
    ids.reserve(streams.size());
    for (const auto& [sid, s] : streams) ids.push_back(sid);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  // Emits every stream whose request headers were complete, in stream order.
  void flush(ExchangeOutcome outcome) {
    for (uint32_t sid : sorted_ids()) {
      Stream& s = streams.at(sid);
      if (s.request_headers_done) emit(s, outcome);
    }
    streams.clear();
  }

  void fail() {
    if (mode != TrackerMode::kHttp && !unparsed_pending) return;
    unparsed_pending = false;
    mode = TrackerMode::kUnparsed;
    sink.on_unparsed_connection(scope);
    flush(ExchangeOutcome::kParseError);
  }
};

Http2Tracker::Http2Tracker(ExchangeSink& sink, uint32_t scope, const Http2Limits& limits)
    : impl_(std::make_unique<Impl>(sink, scope, limits)) {}

Http2Tracker::~Http2Tracker() = default;

void Http2Tracker::begin_upgraded(const UpgradedRequest& r) {
  Impl& t = *impl_;
  if (t.mode != TrackerMode::kHttp) return;
  t.last_client_sid = 1;
  // The client's settings came in its HTTP2-Settings header, which is not decoded: allow the
  // responses' table up to the cap from the start.
  t.server.table_wanted = t.limits.max_header_table_bytes;
  Stream* s = t.open_stream(1, r.request_first_byte);
  if (s == nullptr) return;
  s->ex.method = r.method;
  s->path.assign(r.path.substr(0, t.limits.max_path_bytes));
  s->ex.path_truncated = r.path_truncated || r.path.size() > t.limits.max_path_bytes;
  s->ex.request_headers_done = r.request_headers_done;
  s->ex.request_done = r.request_headers_done;
  s->ex.request_bytes = r.request_bytes;
  s->ex.request_body_bytes = r.request_body_bytes;
  s->request_headers_done = true;
}

void Http2Tracker::on_client_bytes(std::span<const char> bytes, MonoNanos now) {
  if (impl_->closed) return;
  impl_->feed(impl_->client, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), now);
}

void Http2Tracker::on_server_bytes(std::span<const char> bytes, MonoNanos now) {
  if (impl_->closed) return;
  impl_->feed(impl_->server, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), now);
}

void Http2Tracker::on_connection_closed(MonoNanos now, bool reset) {
  Impl& t = *impl_;
  if (t.closed) return;
  t.closed = true;
  t.last_event = now;
  if (t.mode == TrackerMode::kHttp) {
    t.flush(reset ? ExchangeOutcome::kResetBeforeResponse : ExchangeOutcome::kClosedBeforeResponse);
  }
}

void Http2Tracker::on_upstream_failed(MonoNanos now) {
  Impl& t = *impl_;
  if (t.closed) return;
  t.closed = true;
  t.last_event = now;
  if (t.mode == TrackerMode::kHttp) t.flush(ExchangeOutcome::kUpstreamFailed);
}

TrackerMode Http2Tracker::mode() const { return impl_->mode; }

bool Http2Tracker::idle() const {
  const Impl& t = *impl_;
  auto between_frames = [](const Direction& d) { return d.head_have == 0 && !d.in_block; };
  return t.mode == TrackerMode::kHttp && !t.closed && t.streams.empty() &&
         t.client.preface_seen == kHttp2Preface.size() && between_frames(t.client) &&
         between_frames(t.server);
}

size_t Http2Tracker::open_streams() const { return impl_->streams.size(); }

uint64_t Http2Tracker::untracked_streams() const { return impl_->untracked; }

}  // namespace netprof
