// What following HTTP costs per byte and per request: (a) llhttp alone on both directions, with
// no callbacks beyond counting completed messages, and (b) HttpTracker on the same bytes with a
// sink that does nothing. The difference is the tracker's own overhead. The stream is a keep-alive
// conversation of realistic exchanges, one read per message, as a keep-alive client produces.
// (c) Http2Tracker on an h2load-like connection (10 concurrent streams per read, HPACK with a
// real encoder), so the HTTP/2 path's cost per request can be set beside (b).
#include <benchmark/benchmark.h>
#include <llhttp.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "http/tracker.h"
#include "http2/tracker.h"

namespace {

struct Conversation {
  std::string client, server;
  std::vector<size_t> client_ends, server_ends;  // where each request / response ends
  size_t requests = 0;

  void add(const std::string& request, const std::string& response) {
    client += request;
    server += response;
    client_ends.push_back(client.size());
    server_ends.push_back(server.size());
    ++requests;
  }
};

// A browser-ish mix: GETs with headers and queries, a JSON POST, a HEAD, a 304, a chunked reply.
Conversation make_conversation(size_t rounds) {
  const std::string headers =
      "Host: api.example.internal\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
      "Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\n"
      "Cookie: session=0123456789abcdef0123456789abcdef\r\n";
  const std::string json(420, 'j');
  const std::string page(1800, 'p');
  Conversation c;
  for (size_t i = 0; i < rounds; ++i) {
    const std::string id = std::to_string(1000 + i);
    c.add("GET /users/" + id + "/orders?limit=20&page=3 HTTP/1.1\r\n" + headers + "\r\n",
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(json.size()) + "\r\n\r\n" + json);
    c.add("POST /orders HTTP/1.1\r\n" + headers +
              "Content-Type: application/json\r\nContent-Length: 64\r\n\r\n" + std::string(64, 'b'),
          "HTTP/1.1 201 Created\r\nLocation: /orders/" + id + "\r\nContent-Length: 0\r\n\r\n");
    c.add("GET /static/app.js HTTP/1.1\r\n" + headers + "If-None-Match: \"v1\"\r\n\r\n",
          "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n");
    c.add("HEAD /health HTTP/1.1\r\n" + headers + "\r\n",
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    c.add("GET /index.html HTTP/1.1\r\n" + headers + "\r\n",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n708\r\n" + page + "\r\n0\r\n\r\n");
  }
  return c;
}

int count_message(llhttp_t* p) {
  ++*static_cast<size_t*>(p->data);
  return 0;
}
int skip_head_body(llhttp_t* p) {
  // The raw response parser cannot know the request was HEAD; the bench stream has one HEAD
  // per round, always the 4th response, so it is told the same way the tracker is.
  size_t* done = static_cast<size_t*>(p->data);
  return (p->type == HTTP_RESPONSE && *done % 5 == 3) ? 1 : 0;
}


void BM_RawLlhttp(benchmark::State& state) {
  const Conversation c = make_conversation(200);
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_complete = count_message;
  settings.on_headers_complete = skip_head_body;
  for (auto _ : state) {
    size_t requests = 0, responses = 0;
    llhttp_t req, resp;
    llhttp_init(&req, HTTP_REQUEST, &settings);
    llhttp_init(&resp, HTTP_RESPONSE, &settings);
    req.data = &requests;
    resp.data = &responses;
    size_t ci = 0, si = 0;
    for (size_t i = 0; i < c.requests; ++i) {
      llhttp_execute(&req, c.client.data() + ci, c.client_ends[i] - ci);
      llhttp_execute(&resp, c.server.data() + si, c.server_ends[i] - si);
      ci = c.client_ends[i];
      si = c.server_ends[i];
    }
    if (requests != c.requests || responses != c.requests) {
      state.SkipWithError("raw llhttp lost messages");
      break;
    }
    benchmark::DoNotOptimize(requests);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (c.client.size() + c.server.size())));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * c.requests));
}
BENCHMARK(BM_RawLlhttp);

class NullSink final : public netprof::ExchangeSink {
 public:
  void on_exchange(const netprof::Exchange& e) override {
    status_sum += e.status;
    ++exchanges;
  }
  void on_unparsed_connection(uint32_t) override { ++unparsed; }
  uint64_t status_sum = 0;
  size_t exchanges = 0;
  int unparsed = 0;
};

// Feeds `c` to a fresh tracker per iteration, one read per recorded end, and checks every
// exchange came out.
template <typename MakeTracker>
void follow(benchmark::State& state, const Conversation& c, MakeTracker make_tracker) {
  NullSink sink;
  netprof::MonoNanos now = 0;
  for (auto _ : state) {
    sink.exchanges = 0;
    auto tracker = make_tracker(sink);
    size_t ci = 0, si = 0;
    for (size_t i = 0; i < c.client_ends.size(); ++i) {
      tracker.on_client_bytes(std::span(c.client).subspan(ci, c.client_ends[i] - ci), ++now);
      tracker.on_server_bytes(std::span(c.server).subspan(si, c.server_ends[i] - si), ++now);
      ci = c.client_ends[i];
      si = c.server_ends[i];
    }
    tracker.on_connection_closed(++now, false);
    if (sink.unparsed != 0 || sink.exchanges != c.requests) {
      state.SkipWithError("tracker lost track");
      break;
    }
  }
  benchmark::DoNotOptimize(sink.status_sum);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (c.client.size() + c.server.size())));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * c.requests));
}

void BM_Tracker(benchmark::State& state) {
  follow(state, make_conversation(200),
         [](NullSink& sink) { return netprof::HttpTracker(sink, 1); });
}
BENCHMARK(BM_Tracker);

// ---- HTTP/2 -------------------------------------------------------------------------------

std::string h2_frame(uint8_t type, uint8_t flags, uint32_t sid, std::string_view payload) {
  const auto n = static_cast<uint32_t>(payload.size());
  std::string f{static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n),
                static_cast<char>(type), static_cast<char>(flags), static_cast<char>(sid >> 24),
                static_cast<char>(sid >> 16), static_cast<char>(sid >> 8), static_cast<char>(sid)};
  return f.append(payload);
}

// One header block from nghttp2's own encoder (Huffman, dynamic table), as real peers send.
class Deflater {
 public:
  Deflater() { nghttp2_hd_deflate_new(&d_, 4096); }
  ~Deflater() { nghttp2_hd_deflate_del(d_); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  std::string block(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [name, value] : fields) {
      nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(d_, nv.data(), nv.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(d_, reinterpret_cast<uint8_t*>(out.data()),
                                            out.size(), nv.data(), nv.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

// h2load -m 10: each client read carries 10 requests, each server read their 10 responses.
Conversation make_h2_conversation(size_t batches) {
  constexpr size_t kConcurrent = 10;
  Deflater requests, responses;
  const std::string json(420, 'j');
  Conversation c;
  c.client = std::string(netprof::kHttp2Preface) + h2_frame(0x4, 0, 0, "");
  c.server = h2_frame(0x4, 0, 0, "") + h2_frame(0x4, 0x1, 0, "");
  uint32_t sid = 1;
  for (size_t b = 0; b < batches; ++b) {
    for (size_t i = 0; i < kConcurrent; ++i) {
      const std::string path = "/users/" + std::to_string(1000 + b * kConcurrent + i) + "/orders";
      c.client += h2_frame(0x1, 0x5, sid + 2 * i,
                           requests.block({{":method", "GET"},
                                           {":scheme", "http"},
                                           {":authority", "api.example.internal"},
                                           {":path", path},
                                           {"user-agent", "h2load nghttp2/1.52.0"},
                                           {"accept", "application/json"}}));
    }
    for (size_t i = 0; i < kConcurrent; ++i) {
      c.server += h2_frame(0x1, 0x4, sid + 2 * i,
                           responses.block({{":status", "200"},
                                            {"content-type", "application/json"},
                                            {"content-length", "420"},
                                            {"server", "nginx/1.22.1"}}));
      c.server += h2_frame(0x0, 0x1, sid + 2 * i, json);
    }
    c.client_ends.push_back(c.client.size());
    c.server_ends.push_back(c.server.size());
    c.requests += kConcurrent;
    sid += 2 * kConcurrent;
  }
  return c;
}

void BM_Http2Tracker(benchmark::State& state) {
  follow(state, make_h2_conversation(100), [](NullSink& sink) {
    return netprof::Http2Tracker(sink, 1, netprof::Http2Limits{});
  });
}
BENCHMARK(BM_Http2Tracker);

}  // namespace

BENCHMARK_MAIN();
