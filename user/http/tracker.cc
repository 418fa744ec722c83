#include "http/tracker.h"

#include <llhttp.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "http/pending_queue.h"

namespace netprof {
namespace {

// Reason phrases are informational; a server sending a huge one must not cost memory.
constexpr size_t kMaxReasonBytes = 64;

bool is_interim(uint16_t status) { return status >= 100 && status < 200 && status != 101; }
bool is_informational(uint16_t status) { return status >= 100 && status < 200; }
// RFC 9110 15: a status code outside 100-599 is not a response anyone can act on.
bool is_valid_status(uint16_t status) { return status >= 100 && status <= 599; }

// llhttp errors that mean the message's length can be read more than one way: what request
// smuggling is made of. Such connections are counted as an anomaly of their own.
bool is_ambiguous_framing(llhttp_errno_t err) {
  return err == HPE_UNEXPECTED_CONTENT_LENGTH ||  // Content-Length with Transfer-Encoding
         err == HPE_INVALID_TRANSFER_ENCODING ||  // chunked is not the last coding
         err == HPE_INVALID_CONTENT_LENGTH;       // "5, 6", "5 6", "abc"
}

// A Content-Length header repeated with the same value (RFC 9110 8.6 lets a recipient take
// it as one) is accepted; llhttp 8.1 rejects any repetition, and has no lenient flag for it.
// When a second Content-Length starts, llhttp's "seen one" flag is cleared so that it parses
// the value, which must then equal the first one. Which header is being parsed is read from
// llhttp's header_state (cheaper than following every header name); the value llhttp uses for
// Content-Length is learnt once by parsing a sample, and if that fails the repetition is left
// to llhttp's strict default.
struct LengthCheck {
  bool repeated = false;
  uint64_t first = 0;
  bool conflict = false;  // two different values: the connection goes opaque
};

int content_length_header_state() {
  static const int state = [] {
    struct Probe {
      int length = -1, other = -1;
    } probe;
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_header_field_complete = [](llhttp_t* p) {
      auto& pr = *static_cast<Probe*>(p->data);
      (pr.length < 0 && pr.other >= 0 ? pr.length : pr.other) = p->header_state;
      return 0;
    };
    llhttp_t parser;
    llhttp_init(&parser, HTTP_REQUEST, &s);
    parser.data = &probe;
    const std::string_view sample =
        "POST / HTTP/1.1\r\nX-Length: 1\r\nContent-Length: 0\r\n\r\n";
    const bool parsed = llhttp_execute(&parser, sample.data(), sample.size()) == HPE_OK;
    return parsed && probe.length >= 0 && probe.length != probe.other ? probe.length : -1;
  }();
  return state;
}

}  // namespace

// How the pieces fit:
// - Each direction has its own llhttp parser. on_message_complete pauses the parser, so that
//   llhttp_execute returns at the exact message boundary: bytes are attributed to messages
//   precisely however the stream is split, and completions are handled outside callbacks.
// - A request is pushed to `pending` when its first byte is parsed; the response parser always
//   works for pending.front(). A final response completes and emits the front request.
// - After a request that asks to switch protocols (Upgrade, CONNECT) the client parser stops
//   and later client bytes are held until the answer says whether they are still HTTP. The same
//   hold bounds pipelining: with max_pipelined requests pending, later client bytes wait until
//   half of them are answered. Held bytes keep the time they arrived.
struct HttpTracker::Impl {
  enum class Client : uint8_t {
    kIdle,       // between requests
    kInRequest,  // parsing pending.back()
    kOrphan,     // parsing a request that was already answered and emitted (early response)
  };
  enum class Hold : uint8_t {
    kNone,      // client bytes are parsed as they come
    kUpgrade,   // until the Upgrade/CONNECT request (pending.back()) is answered
    kPipeline,  // until half of max_pipelined pending requests are answered
  };
  enum class Side : uint8_t { kClient, kServer };  // whose bytes: which parser runs
  // Held client bytes end at `end` (an offset into `held`) and arrived at `at`.
  struct HeldChunk {
    size_t end;
    MonoNanos at;
  };

  Impl(ExchangeSink& s, uint32_t sc, const TrackerLimits& l) : sink(s), scope(sc), limits(l) {
    llhttp_init(&req_parser, HTTP_REQUEST, &request_settings());
    llhttp_init(&resp_parser, HTTP_RESPONSE, &response_settings());
    req_parser.data = this;
    resp_parser.data = this;
    // An observer should accept what real peers accept, not judge them: bare LF line ends and
    // odd header bytes (servers take them; llhttp would reject them); and a response carrying
    // both Transfer-Encoding: chunked and Content-Length is framed by the chunks (RFC 9112 6.3),
    // which is how the client reads it.
    llhttp_set_lenient_headers(&req_parser, 1);
    llhttp_set_lenient_headers(&resp_parser, 1);
    llhttp_set_lenient_chunked_length(&resp_parser, 1);
  }

  ExchangeSink& sink;
  const uint32_t scope;
  const TrackerLimits limits;
  llhttp_t req_parser{};
  llhttp_t resp_parser{};
  LengthCheck req_length, resp_length;
  bool ambiguous_framing = false;  // went opaque on a message whose length was ambiguous
  http_detail::PendingQueue pending;
  uint32_t requests_seen = 0;  // numbers requests (Exchange::sequence)
  TraceHeaderReader trace_reader;  // the request header being parsed, if trace ids are read
  std::string reason;  // reason phrase of the response being parsed
  std::string held;    // client bytes not parsed yet (see Hold)
  std::vector<HeldChunk> held_chunks;
  MonoNanos now = 0;   // timestamp of the chunk being parsed, for callbacks

  // Wire bytes parsed since the last message boundary of each direction.
  uint64_t req_unattributed = 0;
  uint64_t resp_unattributed = 0;

  TrackerMode mode = TrackerMode::kHttp;
  Client client = Client::kIdle;
  Hold hold = Hold::kNone;     // client parser stopped at a message boundary
  bool client_lost = false;    // held bytes outgrew their bound: the client side is not parsed
  bool req_complete = false;   // set by the request parser's on_message_complete
  bool resp_complete = false;  // set by the response parser's on_message_complete
  bool resp_paired = false;    // the response being parsed belongs to pending.front()
  bool resp_in_message = false;
  bool switching = false;      // the response being parsed switches protocols (101, CONNECT 2xx)
  uint16_t resp_status = 0;
  bool server_eof = false;
  bool closed = false;

  // ---- feeding -------------------------------------------------------------------------

  void feed_client(const char* data, size_t len, MonoNanos at) {
    if (client_lost || mode != TrackerMode::kHttp) return;
    const size_t used = hold == Hold::kNone ? execute(Side::kClient, data, len, at) : 0;
    if (used < len && hold != Hold::kNone) hold_bytes(data + used, len - used, at);
  }

  // The one feed loop of both directions (each has its own parser): runs llhttp over the bytes
  // and handles what stops it: a message boundary (on_message_complete pauses the parser, so
  // bytes are attributed exactly), a protocol switch, an error. A side stops early when it may
  // not go on: the client at a hold (a message boundary), the server after its EOF. Returns how
  // many bytes were parsed.
  size_t execute(Side side, const char* data, size_t len, MonoNanos at) {
    const bool client_side = side == Side::kClient;
    llhttp_t& parser = client_side ? req_parser : resp_parser;
    uint64_t& unattributed = client_side ? req_unattributed : resp_unattributed;
    const size_t total = len;
    int stalls = 0;
    while (len > 0 && mode == TrackerMode::kHttp &&
           (client_side ? hold == Hold::kNone : !server_eof)) {
      now = at;
      const llhttp_errno_t err = llhttp_execute(&parser, data, len);
      const size_t used = consumed(parser, err, data, len);
      unattributed += used;
      data += used;
      len -= used;
      stalls = used == 0 ? stalls + 1 : 0;
      if (err == HPE_OK) break;
      if (err == HPE_PAUSED && (client_side ? req_complete : resp_complete)) {
        llhttp_resume(&parser);
        if (client_side) {
          finish_request();
        } else {
          finish_response(at);
        }
      } else if (err == HPE_PAUSED_UPGRADE) {
        // Comes right after an Upgrade/CONNECT request or a 101 completed. For the client,
        // whether the next bytes are parsed is decided by `hold`; a 101 already made the
        // connection passthrough. Either way the parser is made ready for a next message.
        llhttp_resume_after_upgrade(&parser);
      } else {
        fail(err, client_side ? req_length : resp_length);
        break;
      }
      if (stalls > 2) {  // cannot happen with llhttp as documented; never spin on it
        go_opaque();
        break;
      }
    }
    return total - len;
  }

  static size_t consumed(const llhttp_t& parser, llhttp_errno_t err, const char* data,
                         size_t len) {
    if (err == HPE_OK) return len;
    const char* pos = llhttp_get_error_pos(&parser);
    // Not expected from llhttp; report no progress and let the stall guard end it.
    if (pos == nullptr || pos < data || pos > data + len) return 0;
    return static_cast<size_t>(pos - data);
  }

  void hold_bytes(const char* data, size_t len, MonoNanos at) {
    const bool new_chunk = held_chunks.empty() || held_chunks.back().at != at;
    const size_t cost = held.size() + len + (held_chunks.size() + new_chunk) * sizeof(HeldChunk);
    if (cost > limits.max_held_bytes) {
      lose_client();
      return;
    }
    held.append(data, len);
    if (new_chunk) {
      held_chunks.push_back({held.size(), at});
    } else {
      held_chunks.back().end = held.size();
    }
  }

  void drop_held() {
    std::string().swap(held);
    std::vector<HeldChunk>().swap(held_chunks);
    hold = Hold::kNone;
  }

  // Held bytes outgrew their bound. Pending requests are still answered in order, so they keep
  // being paired; what the client sent after them is not followed (see TrackerLimits).
  void lose_client() {
    drop_held();
    client_lost = true;
  }

  // The reason for a hold is gone: parse the held bytes, with the times they arrived, until
  // they are used up or a new hold begins (whose bytes stay held).
  void release_held() {
    hold = Hold::kNone;
    std::string replay;
    replay.swap(held);
    std::vector<HeldChunk> chunks;
    chunks.swap(held_chunks);
    size_t offset = 0;
    for (size_t i = 0; i < chunks.size() && offset < replay.size(); ++i) {
      if (chunks[i].end <= offset) continue;
      const size_t len = chunks[i].end - offset;
      const size_t used = execute(Side::kClient, replay.data() + offset, len, chunks[i].at);
      offset += used;
      if (mode != TrackerMode::kHttp || client_lost) return;
      if (used < len) break;  // a new hold: the rest stays held
    }
    if (offset >= replay.size()) return;
    held.assign(replay, offset);
    for (const HeldChunk& c : chunks) {
      if (c.end > offset) held_chunks.push_back({c.end - offset, c.at});
    }
  }

  // Called whenever a pending request was answered.
  void after_answer() {
    if (client_lost) {
      if (pending.empty()) go_opaque();  // nothing left that we can follow
    } else if (hold == Hold::kUpgrade && pending.empty()) {
      release_held();  // the upgrade was refused: the held bytes are HTTP after all
    } else if (hold == Hold::kPipeline && pending.size() <= limits.max_pipelined / 2) {
      release_held();  // half answered: parse the next batch
    }
  }

  // ---- message boundaries --------------------------------------------------------------

  void finish_request() {
    req_complete = false;
    if (client == Client::kInRequest) {
      http_detail::PendingRequest& r = pending.back();
      r.ex.request_bytes += req_unattributed;
      // The client parser stops here until the server says whether the protocol switches.
      if (r.upgrade) {
        hold = Hold::kUpgrade;
      } else if (pending.size() >= limits.max_pipelined) {
        hold = Hold::kPipeline;
      }
    }
    req_unattributed = 0;
    client = Client::kIdle;
  }

  void finish_response(MonoNanos at) {
    resp_complete = false;
    resp_in_message = false;
    const uint64_t bytes = resp_unattributed;
    resp_unattributed = 0;
    if (!resp_paired) {
      if (switching) enter_passthrough();
      return;  // unsolicited (e.g. 408 on an idle connection): nothing to pair it with
    }
    http_detail::PendingRequest& r = pending.front();
    r.ex.response_bytes += bytes;
    if (is_interim(resp_status)) return;  // 100, 103: the final response is still to come

    r.ex.response_done = at;
    // A status outside 100-599 (`000`, `999`) is framed like any response, so the connection
    // stays in step, but it is no answer: an error, reported with status 0.
    emit_front(is_valid_status(resp_status) ? ExchangeOutcome::kCompleted
                                            : ExchangeOutcome::kParseError);
    if (switching) {
      enter_passthrough();
    } else {
      after_answer();
    }
  }

  void enter_passthrough() {
    mode = TrackerMode::kPassthrough;
    drop_held();
  }

  // ---- emitting ------------------------------------------------------------------------

  // Emits and removes pending.front(). The client may still be sending that very request (the
  // server answered early); the rest of it is then parsed but no longer recorded.
  void emit_front(ExchangeOutcome outcome) {
    http_detail::PendingRequest& r = pending.front();
    const bool client_inside = client == Client::kInRequest && pending.size() == 1;
    if (client_inside) r.ex.request_bytes += req_unattributed;
    Exchange& ex = r.ex;
    ex.outcome = outcome;
    ex.path = r.path;
    ex.trace_id = r.trace.view();
    if (outcome == ExchangeOutcome::kCompleted) {
      ex.reason = reason;
    } else {
      ex.status = 0;  // no complete response; what was seen of it stays in the other fields
      ex.reason = {};
      ex.ended = now;
    }
    sink.on_exchange(ex);
    pending.pop_front();
    if (client_inside) client = Client::kOrphan;
  }

  // Emits every pending request that got as far as complete headers; partial request heads are
  // not requests anyone could name.
  void flush_pending(ExchangeOutcome outcome) {
    if (resp_in_message && resp_paired && !pending.empty()) {
      pending.front().ex.response_bytes += resp_unattributed;
    }
    resp_unattributed = 0;
    resp_in_message = false;
    while (!pending.empty()) {
      if (pending.front().headers_done) {
        emit_front(outcome);
      } else {
        pending.pop_front();
      }
    }
    client = Client::kIdle;
    req_unattributed = 0;
  }

  void fail(llhttp_errno_t err, const LengthCheck& length) {
    if (is_ambiguous_framing(err) || length.conflict) ambiguous_framing = true;
    go_opaque();
  }

  // Either direction failing ends the same way: the requests still pending can no longer be
  // followed, so they are reported as kParseError (a request whose own bytes failed to parse
  // never completed its headers and is not reported).
  void go_opaque() {
    if (mode != TrackerMode::kHttp) return;
    mode = TrackerMode::kUnparsed;
    sink.on_unparsed_connection(scope);
    flush_pending(ExchangeOutcome::kParseError);
    drop_held();
  }

  // The connection ends: every request the client sent is reported, also those still held
  // unparsed behind a full pipeline, batch by batch so that memory stays bounded.
  void end(ExchangeOutcome outcome) {
    flush_pending(outcome);
    while (mode == TrackerMode::kHttp && hold == Hold::kPipeline) {
      release_held();
      flush_pending(outcome);
    }
    if (mode == TrackerMode::kHttp && client_lost) {
      mode = TrackerMode::kUnparsed;  // bytes were relayed that we did not follow
      sink.on_unparsed_connection(scope);
    }
    drop_held();
    closed = true;
  }

  // ---- request callbacks -------------------------------------------------------------------

  http_detail::PendingRequest* current_request() {
    return client == Client::kInRequest ? &pending.back() : nullptr;
  }

  static Impl& of(llhttp_t* p) { return *static_cast<Impl*>(p->data); }

  static int req_begin(llhttp_t* p) {
    Impl& t = of(p);
    // Never more than max_pipelined: the parser holds the client's bytes before that (hold).
    if (t.pending.size() >= t.limits.max_pipelined) return -1;
    http_detail::PendingRequest& r = t.pending.push(t.scope);
    r.ex.request_first_byte = t.now;
    r.ex.sequence = ++t.requests_seen;
    t.trace_reader.reset();
    t.client = Client::kInRequest;
    return 0;
  }

  static int req_url(llhttp_t* p, const char* at, size_t len) {
    Impl& t = of(p);
    if (auto* r = t.current_request()) {
      const size_t room = t.limits.max_path_bytes - std::min(r->path.size(), t.limits.max_path_bytes);
      if (len > room) r->ex.path_truncated = true;
      r->path.append(at, std::min(len, room));
    }
    return 0;
  }

  static int req_method_complete(llhttp_t* p) {
    Impl& t = of(p);
    if (auto* r = t.current_request()) r->ex.method = p->method;
    return 0;
  }

  static int req_headers_complete(llhttp_t* p) {
    Impl& t = of(p);
    if (auto* r = t.current_request()) {
      r->ex.method = p->method;
      r->ex.http_major = p->http_major;
      r->ex.http_minor = p->http_minor;
      r->ex.request_headers_done = t.now;
      r->headers_done = true;
      r->upgrade = p->upgrade != 0;  // llhttp sets it for CONNECT and for Upgrade+Connection
    }
    return 0;
  }

  static int req_body(llhttp_t* p, const char*, size_t len) {
    Impl& t = of(p);
    if (auto* r = t.current_request()) r->ex.request_body_bytes += len;
    return 0;
  }

  static int req_message_complete(llhttp_t* p) {
    Impl& t = of(p);
    if (auto* r = t.current_request()) r->ex.request_done = t.now;
    t.req_complete = true;
    return HPE_PAUSED;
  }

  // ---- Content-Length repetition (both directions) ---------------------------------------

  LengthCheck& length_of(llhttp_t* p) { return p == &req_parser ? req_length : resp_length; }

  // ---- trace ids (request heads only) -----------------------------------------------------

  bool reads_trace(llhttp_t* p) const {
    return limits.trace_ids && p == &req_parser && client == Client::kInRequest;
  }

  static int req_header_field(llhttp_t* p, const char* at, size_t len) {
    Impl& t = of(p);
    if (t.reads_trace(p)) t.trace_reader.name_piece({at, len});
    return 0;
  }

  static int req_header_value(llhttp_t* p, const char* at, size_t len) {
    Impl& t = of(p);
    if (t.reads_trace(p)) t.trace_reader.value_piece({at, len});
    return 0;
  }

  static int on_header_field_complete(llhttp_t* p) {
    if (Impl& t = of(p); t.reads_trace(p)) t.trace_reader.name_done();
    if ((p->flags & F_CONTENT_LENGTH) == 0 || p->header_state != content_length_header_state()) {
      return 0;
    }
    LengthCheck& c = of(p).length_of(p);
    c.repeated = true;
    c.first = p->content_length;
    p->flags = static_cast<uint16_t>(p->flags & ~F_CONTENT_LENGTH);
    p->content_length = 0;  // llhttp accumulates the digits onto it
    return 0;
  }

  static int on_header_value_complete(llhttp_t* p) {
    if (Impl& t = of(p); t.reads_trace(p)) t.trace_reader.value_done(t.pending.back().trace);
    LengthCheck& c = of(p).length_of(p);
    const bool repeated = c.repeated;
    c.repeated = false;
    if (repeated && p->content_length != c.first) {
      c.conflict = true;  // two lengths: which one the peer uses decides where messages end
      return -1;
    }
    return 0;
  }

  // ---- response callbacks ------------------------------------------------------------------

  static int resp_begin(llhttp_t* p) {
    Impl& t = of(p);
    t.reason.clear();
    t.resp_in_message = true;
    t.resp_paired = !t.pending.empty();
    t.resp_status = 0;
    t.switching = false;
    return 0;
  }

  static int resp_status_text(llhttp_t* p, const char* at, size_t len) {
    Impl& t = of(p);
    const size_t room = kMaxReasonBytes - std::min(t.reason.size(), kMaxReasonBytes);
    t.reason.append(at, std::min(len, room));
    return 0;
  }

  // Return 1 tells llhttp the response has no body whatever its headers say; 2 additionally
  // stops the parser (protocol switch).
  static int resp_headers_complete(llhttp_t* p) {
    Impl& t = of(p);
    const uint16_t status = p->status_code;
    t.resp_status = status;
    http_detail::PendingRequest* r = t.resp_paired ? &t.pending.front() : nullptr;
    if (status == 101) {
      t.switching = true;
    } else if (r != nullptr && r->ex.method == HTTP_CONNECT && status >= 200 && status < 300) {
      t.switching = true;
    }
    if (r != nullptr && !is_interim(status)) {
      r->ex.status = status;
      r->ex.response_headers_done = t.now;
      r->final_headers = true;
    }
    if (t.switching) return 2;
    if (is_informational(status) || status == 204 || status == 304) return 1;
    if (r != nullptr && r->ex.method == HTTP_HEAD) return 1;
    return 0;
  }

  static int resp_body(llhttp_t* p, const char*, size_t len) {
    Impl& t = of(p);
    if (t.resp_paired && t.pending.front().final_headers) {
      t.pending.front().ex.response_body_bytes += len;
    }
    return 0;
  }

  static int resp_message_complete(llhttp_t* p) {
    of(p).resp_complete = true;
    return HPE_PAUSED;
  }

  static const llhttp_settings_t& request_settings() {
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = req_begin;
      s.on_url = req_url;
      s.on_header_field = req_header_field;
      s.on_header_value = req_header_value;
      s.on_header_field_complete = on_header_field_complete;
      s.on_header_value_complete = on_header_value_complete;
      s.on_method_complete = req_method_complete;
      s.on_headers_complete = req_headers_complete;
      s.on_body = req_body;
      s.on_message_complete = req_message_complete;
      return s;
    }();
    return settings;
  }

  static const llhttp_settings_t& response_settings() {
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = resp_begin;
      s.on_status = resp_status_text;
      s.on_header_field_complete = on_header_field_complete;
      s.on_header_value_complete = on_header_value_complete;
      s.on_headers_complete = resp_headers_complete;
      s.on_body = resp_body;
      s.on_message_complete = resp_message_complete;
      return s;
    }();
    return settings;
  }

  // ---- connection end ----------------------------------------------------------------------

  void server_eof_at(MonoNanos at) {
    if (mode != TrackerMode::kHttp || server_eof) return;
    server_eof = true;
    if (!resp_in_message) return;
    now = at;
    // Completes a response delimited by the connection close (HTTP/1.0 style); a response cut
    // short stays pending and is reported when the connection goes away.
    llhttp_finish(&resp_parser);
    if (resp_complete) finish_response(at);
  }
};

HttpTracker::HttpTracker(ExchangeSink& sink, uint32_t scope, const TrackerLimits& limits)
    : impl_(std::make_unique<Impl>(sink, scope, limits)) {}

HttpTracker::~HttpTracker() = default;

void HttpTracker::on_client_bytes(std::span<const char> bytes, MonoNanos now) {
  if (impl_->closed) return;
  impl_->feed_client(bytes.data(), bytes.size(), now);
}

void HttpTracker::on_server_bytes(std::span<const char> bytes, MonoNanos now) {
  if (impl_->closed) return;
  impl_->execute(Impl::Side::kServer, bytes.data(), bytes.size(), now);
}

void HttpTracker::on_server_eof(MonoNanos now) {
  if (impl_->closed) return;
  impl_->server_eof_at(now);
}

void HttpTracker::on_client_eof(MonoNanos) {
  // Nothing to finish: a request never ends by EOF, and pending requests still await answers.
}

void HttpTracker::on_connection_closed(MonoNanos now, bool reset) {
  Impl& t = *impl_;
  if (t.closed) return;
  t.now = now;
  if (!reset) t.server_eof_at(now);
  t.end(reset ? ExchangeOutcome::kResetBeforeResponse : ExchangeOutcome::kClosedBeforeResponse);
}

void HttpTracker::on_upstream_failed(MonoNanos now) {
  Impl& t = *impl_;
  if (t.closed) return;
  t.now = now;
  t.end(ExchangeOutcome::kUpstreamFailed);
}

TrackerMode HttpTracker::mode() const { return impl_->mode; }

bool HttpTracker::ambiguous_framing() const { return impl_->ambiguous_framing; }

size_t HttpTracker::pending_requests() const { return impl_->pending.size(); }

bool HttpTracker::idle() const {
  const Impl& t = *impl_;
  return t.mode == TrackerMode::kHttp && !t.closed && !t.client_lost && t.pending.empty() &&
         t.client == Impl::Client::kIdle && !t.resp_in_message && t.held.empty() &&
         t.req_unattributed == 0 && t.resp_unattributed == 0;
}

}  // namespace netprof
