// What following HTTP costs per byte and per request: (a) llhttp alone on both directions, with
// no callbacks beyond counting completed messages, and (b) HttpTracker on the same bytes with a
// sink that does nothing. The difference is the tracker's own overhead. The stream is a keep-alive
// conversation of realistic exchanges, one read per message, as a keep-alive client produces.
#include <benchmark/benchmark.h>
#include <llhttp.h>

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "http/tracker.h"

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

void BM_Tracker(benchmark::State& state) {
  const Conversation c = make_conversation(200);
  NullSink sink;
  netprof::MonoNanos now = 0;
  for (auto _ : state) {
    sink.exchanges = 0;
    netprof::HttpTracker tracker(sink, 1);
    size_t ci = 0, si = 0;
    for (size_t i = 0; i < c.requests; ++i) {
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
BENCHMARK(BM_Tracker);

}  // namespace

BENCHMARK_MAIN();
