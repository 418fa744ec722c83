// HTTP/2 conversations for the byte-exactness torture, written frame by frame so that every
// feature the tracker must follow shows up: many streams interleaved at frame granularity,
// header blocks split into CONTINUATION frames, padding, PRIORITY fields and frames, HPACK
// dynamic tables (libnghttp2's deflater, sized by each side's SETTINGS), request and response
// trailers, interim 1xx responses, gRPC, RST_STREAM from either side, PING, WINDOW_UPDATE,
// GOAWAY and an unknown extension frame; prior knowledge or an h2c Upgrade.
//
// Each side takes turns: the client's turn k (new streams, their bodies), then the server's
// answer to it. The expected report entries are counted the way the tracker counts them: frame
// bytes (header + payload) of a stream's HEADERS, CONTINUATION and DATA frames.
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scenarios.h"

namespace netprof::torture {
namespace {

size_t pick(std::mt19937_64& rng, size_t lo, size_t hi) {  // inclusive
  return std::uniform_int_distribution<size_t>(lo, hi)(rng);
}
bool chance(std::mt19937_64& rng, double p) { return std::bernoulli_distribution(p)(rng); }

enum : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
  kUnknownType = 0xfa,  // an extension frame type: peers (and the tracker) ignore it
};
enum : uint8_t {
  kEndStream = 0x1,
  kAck = 0x1,
  kEndHeaders = 0x4,
  kPadded = 0x8,
  kPriorityFlag = 0x20,
};
constexpr size_t kMaxFrame = 16384;  // SETTINGS_MAX_FRAME_SIZE, never raised here
constexpr uint16_t kSettingHeaderTable = 0x1, kSettingEnablePush = 0x2, kSettingMaxStreams = 0x3,
                   kSettingInitialWindow = 0x4,
                   kSettingGrease = 0x0a0a;  // unknown to peers: ignored (RFC 9113 6.5.2)

std::string be(uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::string frame(uint8_t type, uint8_t flags, uint32_t sid, const std::string& payload) {
  return be(payload.size(), 3) + static_cast<char>(type) + static_cast<char>(flags) + be(sid, 4) +
         payload;
}

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Deflater {
  explicit Deflater(size_t max_table) { nghttp2_hd_deflate_new(&d, max_table); }
  ~Deflater() { nghttp2_hd_deflate_del(d); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  std::string block(const Headers& headers) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [name, value] : headers) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                     value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(d, nva.data(), nva.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(d, reinterpret_cast<uint8_t*>(out.data()), out.size(),
                                            nva.data(), nva.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }
  void table_size(size_t size) { nghttp2_hd_deflate_change_table_size(d, size); }

  nghttp2_hd_deflater* d = nullptr;
};

// A unit of one side's turn: a whole header block (HEADERS + CONTINUATION, never interleaved
// with anything else) or a single other frame. Header blocks are encoded when their unit is
// written, so that both HPACK tables see blocks in wire order.
struct Unit {
  uint32_t sid = 0;
  std::optional<Headers> headers;  // a header block, or:
  std::string raw;                 // a ready frame (DATA, RST_STREAM, PING...)
  bool end_stream = false;         // header block only
  bool counts = false;             // raw: a DATA frame, counted towards its stream
};

struct StreamPlan {
  uint32_t sid = 0;
  std::vector<Unit> client, server;
  uint16_t status = 0;  // 0: reset before a response
  bool error = false;
  uint64_t request_bytes = 0, response_bytes = 0;
};

class Writer {
 public:
  Writer(std::mt19937_64& rng, Deflater& deflater, std::string& out)
      : rng_(rng), deflater_(deflater), out_(out) {}

  // Writes `unit`; returns the frame bytes that count towards its stream.
  uint64_t write(const Unit& unit) {
    if (!unit.headers) {
      out_ += unit.raw;
      return unit.counts ? unit.raw.size() : 0;
    }
    const std::string block = deflater_.block(*unit.headers);
    uint64_t bytes = 0;
    size_t at = 0;
    bool first = true;
    do {
      std::string payload;
      uint8_t flags = 0;
      size_t room = kMaxFrame;
      std::string prefix, padding;
      if (first && chance(rng_, 0.2)) {
        flags |= kPriorityFlag;
        prefix = be(chance(rng_, 0.5) ? 0
                    : unit.sid > 2    ? unit.sid - 2
                                      : 0,
                    4) +
                 static_cast<char>(pick(rng_, 0, 255));
      }
      if (first && chance(rng_, 0.2)) {
        flags |= kPadded;
        padding.assign(pick(rng_, 0, 255), '\0');
        room -= 1 + padding.size();
      }
      room -= prefix.size();
      // Pieces: whole blocks mostly, sometimes cut into random CONTINUATIONs.
      size_t take = std::min(block.size() - at, room);
      if (chance(rng_, 0.25) && take > 1) take = pick(rng_, 1, take);
      if (flags & kPadded) payload += static_cast<char>(padding.size());
      payload += prefix;
      payload.append(block, at, take);
      payload += padding;
      at += take;
      if (at == block.size()) flags |= kEndHeaders;
      if (first && unit.end_stream) flags |= kEndStream;
      const std::string f = frame(first ? kHeaders : kContinuation, flags, unit.sid, payload);
      out_ += f;
      bytes += f.size();
      first = false;
    } while (at < block.size());
    return bytes;
  }

 private:
  std::mt19937_64& rng_;
  Deflater& deflater_;
  std::string& out_;
};

// DATA frames carrying `size` body bytes (random frame sizes, sometimes padded); the last one
// ends the stream if `end`.
std::vector<Unit> data_units(std::mt19937_64& rng, uint32_t sid, size_t size, bool end) {
  std::vector<Unit> units;
  size_t left = size;
  do {
    const bool padded = chance(rng, 0.15);
    const size_t pad = padded ? pick(rng, 0, 255) : 0;
    const size_t room = kMaxFrame - (padded ? 1 + pad : 0);
    const size_t n = std::min(left, chance(rng, 0.5) ? room : pick(rng, 1, room));
    left -= n;
    std::string payload;
    if (padded) payload += static_cast<char>(pad);
    payload += random_bytes(rng, n);
    payload.append(pad, '\0');
    Unit u;
    u.sid = sid;
    u.raw = frame(
        kData, static_cast<uint8_t>((padded ? kPadded : 0) | (left == 0 && end ? kEndStream : 0)),
        sid, payload);
    u.counts = true;
    units.push_back(std::move(u));
  } while (left > 0);
  return units;
}

// Small bodies stay under 1,500 bytes: 20 of them fit the initial flow-control window.
size_t body_size(std::mt19937_64& rng, bool big_ok) {
  switch (pick(rng, 0, 9)) {
    case 0: return 0;
    case 1:
    case 2:
    case 3:
    case 4: return pick(rng, 1, 300);
    case 5:
    case 6:
    case 7:
    case 8: return big_ok ? pick(rng, 300, 20000) : pick(rng, 300, 1500);
    default: return big_ok ? pick(rng, 20000, 300000) : pick(rng, 1, 1500);
  }
}

std::string lower_word(std::mt19937_64& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>('a' + pick(rng, 0, 25));
  return s;
}

void add_random_headers(std::mt19937_64& rng, Headers& h) {
  if (chance(rng, 0.7)) h.emplace_back("user-agent", "torture/1.0");  // repeats: indexed
  const size_t n = pick(rng, 0, 5);
  for (size_t i = 0; i < n; ++i) {
    // Now and then a value too large for one frame: the block needs CONTINUATION frames.
    const size_t len = chance(rng, 0.02)  ? pick(rng, 17000, 40000)
                       : chance(rng, 0.1) ? pick(rng, 500, 6000)
                                          : pick(rng, 0, 40);
    h.emplace_back("x-torture-" + std::to_string(pick(rng, 0, 9)), lower_word(rng, len));
  }
}

std::string hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::string base64url(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v =
        uint32_t{uint8_t(in[i])} << 16 | uint32_t{uint8_t(in[i + 1])} << 8 | uint8_t(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint32_t{uint8_t(in[i])} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const uint32_t v = uint32_t{uint8_t(in[i])} << 16 | uint32_t{uint8_t(in[i + 1])} << 8;
    for (int k = 18; k >= 6; k -= 6) out += kAlphabet[(v >> k) & 63];
  }
  return out;
}

std::string settings_payload(const std::vector<std::pair<uint16_t, uint32_t>>& entries) {
  std::string p;
  for (const auto& [id, value] : entries) p += be(id, 2) + be(value, 4);
  return p;
}

// One stream's request (client units) and answer (server units), with what it must count as.
// `upgraded`: stream 1 of an h2c upgrade (its request was HTTP/1.1). Big bodies only where the
// flow-control windows allow them (`big_request`, `big_response`).
StreamPlan plan_stream(std::mt19937_64& rng, uint32_t scenario, uint32_t sid, size_t turn,
                       bool big_request, bool big_response, bool upgraded) {
  StreamPlan p;
  p.sid = sid;
  const bool grpc = !upgraded && chance(rng, 0.2);
  static const char* kMethods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD"};
  const std::string method = grpc ? "POST" : kMethods[pick(rng, 0, std::size(kMethods) - 1)];
  const bool head = method == "HEAD";
  const bool has_body = method == "POST" || method == "PUT";

  if (!upgraded) {
    Headers req = {{":method", method},
                   {":scheme", "http"},
                   {":authority", "torture"},
                   {":path", grpc ? std::string(chance(rng, 0.5) ? "/torture.Echo/Unary"
                                                                 : "/torture.Echo/Stream")
                                  : "/t/" + hex8(scenario) + "/h" + std::to_string(turn) +
                                        "?s=" + std::to_string(sid)}};
    if (grpc) {
      req.emplace_back("content-type", "application/grpc");
      req.emplace_back("te", "trailers");
    }
    add_random_headers(rng, req);
    const size_t body = has_body ? body_size(rng, big_request) : 0;
    const bool trailers = has_body && !grpc && chance(rng, 0.05);
    Unit h;
    h.sid = sid;
    h.headers = std::move(req);
    h.end_stream = body == 0 && !trailers;
    p.client.push_back(std::move(h));
    if (body > 0 || (has_body && trailers)) {
      for (Unit& u : data_units(rng, sid, body, !trailers)) p.client.push_back(std::move(u));
    }
    if (trailers) {
      Unit t;
      t.sid = sid;
      t.headers = Headers{{"x-request-trailer", "done"}};
      t.end_stream = true;
      p.client.push_back(std::move(t));
    }
    // The client gives up on the call before any answer: cancelled, never answered.
    if (chance(rng, 0.04)) {
      if (p.client.size() > 2) p.client.resize(pick(rng, 1, p.client.size() - 1));
      Unit r;
      r.sid = sid;
      r.raw = frame(kRstStream, 0, sid, be(0x8, 4));  // CANCEL
      p.client.push_back(std::move(r));
      p.error = true;
      return p;
    }
  }

  // The server refuses some streams outright.
  if (chance(rng, 0.03)) {
    Unit r;
    r.sid = sid;
    r.raw = frame(kRstStream, 0, sid, be(0x7, 4));  // REFUSED_STREAM
    p.server.push_back(std::move(r));
    p.error = true;
    return p;
  }
  if (chance(rng, 0.1)) {  // an interim response first
    Unit i;
    i.sid = sid;
    i.headers = Headers{{":status", "103"}, {"link", "</style.css>; rel=preload"}};
    p.server.push_back(std::move(i));
  }
  Unit h;
  h.sid = sid;
  if (grpc) {
    static const int kGrpc[] = {0, 0, 0, 0, 5, 13, 4};
    const int g = kGrpc[pick(rng, 0, std::size(kGrpc) - 1)];
    p.status = 200;
    p.error = g != 0;
    if (g != 0 && chance(rng, 0.5)) {  // trailers-only
      h.headers = Headers{{":status", "200"},
                          {"content-type", "application/grpc"},
                          {"grpc-status", std::to_string(g)},
                          {"grpc-message", "torture"}};
      h.end_stream = true;
      p.server.push_back(std::move(h));
      return p;
    }
    h.headers = Headers{{":status", "200"}, {"content-type", "application/grpc"}};
    p.server.push_back(std::move(h));
    const size_t size = pick(rng, 5, big_response && chance(rng, 0.1) ? 100000 : 500);
    for (Unit& u : data_units(rng, sid, size, false)) p.server.push_back(std::move(u));
    Unit t;
    t.sid = sid;
    t.headers = Headers{{"grpc-status", std::to_string(g)}};
    t.end_stream = true;
    p.server.push_back(std::move(t));
    return p;
  }
  static const uint16_t kStatus[] = {200, 200, 200, 201, 204, 301, 304, 404, 500, 503};
  p.status = kStatus[pick(rng, 0, std::size(kStatus) - 1)];
  p.error = p.status >= 500;
  Headers resp = {{":status", std::to_string(p.status)}, {"server", "torture"}};
  add_random_headers(rng, resp);
  const bool no_body = head || p.status == 204 || p.status == 304;
  const size_t body = no_body ? 0 : body_size(rng, big_response);
  const bool trailers = body > 0 && chance(rng, 0.1);
  h.headers = std::move(resp);
  h.end_stream = body == 0;
  p.server.push_back(std::move(h));
  if (body > 0) {
    for (Unit& u : data_units(rng, sid, body, !trailers)) p.server.push_back(std::move(u));
  }
  if (trailers) {
    Unit t;
    t.sid = sid;
    t.headers = Headers{{"x-trailer", lower_word(rng, pick(rng, 1, 30))}};
    t.end_stream = true;
    p.server.push_back(std::move(t));
  }
  return p;
}

// Frames of no stream's exchange, slipped in between the units of a turn.
Unit connection_noise(std::mt19937_64& rng, uint32_t max_sid) {
  Unit u;
  switch (pick(rng, 0, 4)) {
    case 0: u.raw = frame(kPing, 0, 0, random_bytes(rng, 8)); break;
    case 1: u.raw = frame(kWindowUpdate, 0, 0, be(pick(rng, 1, 1 << 20), 4)); break;
    case 2:  // PRIORITY may name a stream not opened yet (RFC 9113 5.1)
    case 3:
      u.raw = frame(kPriority, 0, static_cast<uint32_t>(max_sid | 1),
                    be(0, 4) + static_cast<char>(pick(rng, 0, 255)));
      break;
    default:
      u.raw = frame(kUnknownType, static_cast<uint8_t>(pick(rng, 0, 255)),
                    static_cast<uint32_t>(pick(rng, 0, 100)), random_bytes(rng, pick(rng, 0, 64)));
  }
  return u;
}

// Writes the units of several streams interleaved at random (each stream's own units in
// order), with connection frames in between; adds what counts to each stream.
void interleave(std::mt19937_64& rng, Writer& w, std::vector<StreamPlan*>& plans, bool client,
                uint32_t max_sid) {
  std::vector<std::pair<StreamPlan*, size_t>> queues;
  for (StreamPlan* p : plans) {
    if (!(client ? p->client : p->server).empty()) queues.emplace_back(p, 0);
  }
  while (!queues.empty()) {
    if (chance(rng, 0.03)) w.write(connection_noise(rng, max_sid));
    // A client opens streams in the order of their ids (RFC 9113 5.1.1): a stream not started
    // yet may only be picked if it is the first such one; started ones in any order.
    size_t q = pick(rng, 0, queues.size() - 1);
    if (client && queues[q].second == 0) {
      while (q > 0 && queues[q - 1].second == 0) --q;
    }
    StreamPlan* p = queues[q].first;
    std::vector<Unit>& units = client ? p->client : p->server;
    const uint64_t bytes = w.write(units[queues[q].second++]);
    (client ? p->request_bytes : p->response_bytes) += bytes;
    if (queues[q].second == units.size()) queues.erase(queues.begin() + static_cast<long>(q));
  }
}

}  // namespace

Scenario make_h2_scenario(uint32_t id, std::mt19937_64& rng, bool upgrade) {
  Scenario s;
  s.id = id;
  s.kind = Kind::kH2;
  // A huge number of streams, small bodies; in turns, so that no more than the tracker's
  // max_streams are open at once (more would be counted untracked, by design).
  const bool many = chance(rng, 0.1);
  s.pipelined = !upgrade && !many && chance(rng, 0.3);
  const size_t turns = many ? pick(rng, 4, 8) : pick(rng, 1, 4);

  // SETTINGS_HEADER_TABLE_SIZE each side announces: it sizes the table of the blocks the
  // *other* side encodes. A client that sends everything at once never hears the server's, so
  // then the server announces nothing the client would have to act on.
  static const uint32_t kTables[] = {4096, 4096, 0, 1024, 8192, 65536};
  const uint32_t client_table = kTables[pick(rng, 0, std::size(kTables) - 1)];
  const uint32_t server_table = s.pipelined ? 4096 : kTables[pick(rng, 0, std::size(kTables) - 1)];
  Deflater client_enc(65536), server_enc(65536);
  // An upgraded connection's client settings came in its HTTP2-Settings header.
  if (upgrade) server_enc.table_size(client_table);
  Writer cw(rng, client_enc, s.client_bytes), sw(rng, server_enc, s.server_bytes);

  const std::string client_settings = settings_payload(
      {{kSettingGrease, id},  // the scenario tag (first entry: see find_scenario_tag)
       {kSettingHeaderTable, client_table},
       {kSettingEnablePush, 0},
       {kSettingInitialWindow, (1u << 31) - 1}});
  const std::string server_settings = settings_payload({{kSettingMaxStreams, 1000},
                                                        {kSettingHeaderTable, server_table},
                                                        {kSettingInitialWindow, (1u << 31) - 1}});

  std::vector<std::unique_ptr<StreamPlan>> all;
  uint32_t next_sid = 1;
  for (size_t turn = 0; turn < turns + (upgrade ? 1 : 0); ++turn) {
    // ---- the client's turn
    std::vector<StreamPlan*> plans;
    if (upgrade && turn == 0) {
      // Answered before the client's WINDOW_UPDATE: within the initial 65,535-byte window.
      auto p = std::make_unique<StreamPlan>(plan_stream(rng, id, 1, 0, false, false, true));
      const bool post = chance(rng, 0.3);
      const std::string body = post ? random_bytes(rng, pick(rng, 1, 2000)) : "";
      std::string req = std::string(post ? "POST" : "GET") + " /t/" + hex8(id) +
                        "/u HTTP/1.1\r\nHost: torture\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                        "Upgrade: h2c\r\nHTTP2-Settings: " +
                        base64url(client_settings) + "\r\n";
      if (post) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
      req += "\r\n" + body;
      s.client_bytes += req;
      p->request_bytes = req.size();
      next_sid = 3;
      plans.push_back(p.get());
      all.push_back(std::move(p));
    } else {
      if (turn == (upgrade ? 1 : 0)) {
        s.client_bytes += "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        s.client_bytes += frame(kSettings, 0, 0, client_settings);
        s.client_bytes += frame(kWindowUpdate, 0, 0, be((1u << 30), 4));
      }
      if (turn == 1 && !s.pipelined) {
        s.client_bytes += frame(kSettings, kAck, 0, "");  // the server's SETTINGS, just read
        // The server's announcement bounds this encoder's table from now on.
        client_enc.table_size(server_table);
      }
      // Until the client has read the server's SETTINGS and WINDOW_UPDATE, what it may send
      // is bounded by the initial 65,535-byte windows: small request bodies then.
      const bool opening = turn == (upgrade ? 1 : 0) || s.pipelined;
      const bool big_request = !many && !opening;
      const size_t streams = many && !opening ? pick(rng, 60, 150) : pick(rng, 1, 20);
      for (size_t i = 0; i < streams; ++i, next_sid += 2) {
        auto p = std::make_unique<StreamPlan>(
            plan_stream(rng, id, next_sid, turn, big_request, !many, false));
        plans.push_back(p.get());
        all.push_back(std::move(p));
      }
      interleave(rng, cw, plans, true, next_sid);
      if (turn + 1 == turns + (upgrade ? 1 : 0) && chance(rng, 0.3))
        s.client_bytes += frame(kGoaway, 0, 0, be(0, 4) + be(0, 4));
    }
    s.request_ends.push_back(s.client_bytes.size());

    // ---- the server's answer
    if (turn == 0) {
      if (upgrade)
        s.server_bytes +=
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            "Upgrade: h2c\r\n\r\n";
      s.server_bytes += frame(kSettings, 0, 0, server_settings);
      s.server_bytes += frame(kWindowUpdate, 0, 0, be((1u << 30), 4));
      if (!upgrade) {
        s.server_bytes += frame(kSettings, kAck, 0, "");
        server_enc.table_size(client_table);
      }
    }
    if (upgrade && turn == 1) s.server_bytes += frame(kSettings, kAck, 0, "");
    if (chance(rng, 0.2)) s.server_bytes += frame(kPing, kAck, 0, random_bytes(rng, 8));
    interleave(rng, sw, plans, false, next_sid);
    if (turn + 1 == turns + (upgrade ? 1 : 0) && chance(rng, 0.5))
      s.server_bytes += frame(kGoaway, 0, 0, be(next_sid - 2, 4) + be(0, 4));
    s.response_ends.push_back(s.server_bytes.size());
  }

  for (const auto& p : all) {
    ++s.exchanges;
    s.errors += p->error;
    ++s.statuses[p->status];
    s.request_bytes += p->request_bytes;
    s.response_bytes += p->response_bytes;
  }
  return s;
}

}  // namespace netprof::torture
