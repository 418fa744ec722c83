// Byte exactness through `netprof proxy` and `netprof attach`: randomized HTTP/1.x
// conversations (keep-alive, pipelining, chunked and binary bodies, 1xx, HEAD, close-delimited
// responses), HTTP/2 (prior knowledge and h2c Upgrade; many interleaved streams, big bodies,
// CONTINUATION, padding, HPACK table changes, trailers, gRPC, resets), TLS (real OpenSSL
// handshakes and records, recorded in memory and replayed) and opaque binary streams, all with
// random write sizes and split points and slow readers. Both test peers hash what they
// received; each must equal the hash of what the other sent. The final report must count
// exactly what was sent: exchanges, statuses, errors and bytes, TLS connections.
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "net_util.h"
#include "netprof_process.h"
#include "peer.h"
#include "scenarios.h"
#include "sha256.h"

namespace netprof::torture {
namespace {

uint64_t seed_from_env() {
  const char* s = std::getenv("NETPROF_TORTURE_SEED");
  return s && *s ? std::strtoull(s, nullptr, 10) : std::random_device{}();
}

// Serves every scenario: finds the scenario from the first bytes, answers like an HTTP server
// (response i once request i is in), or streams at once for opaque scenarios.
class ScenarioBackend {
 public:
  explicit ScenarioBackend(const std::vector<Scenario>& scenarios, uint64_t seed)
      : scenarios_(scenarios), seed_(seed) {
    for (const Scenario& s : scenarios) {
      if (s.kind == Kind::kTls && s.client_bytes.size() >= kTagBytes)
        tls_by_prefix_[s.client_bytes.substr(0, kTagBytes)] = s.id;
    }
    listener_ = listen_loopback(&port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~ScenarioBackend() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : workers_) t.join();
  }
  uint16_t port() const { return port_; }

  std::map<uint32_t, PeerResult> results() {
    std::lock_guard lock(mu_);
    return results_;
  }
  std::vector<std::string> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  void accept_loop() {
    uint64_t n = 0;
    while (!stop_) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      workers_.emplace_back([this, fd, n] { serve(Fd(fd), seed_ * 7919 + n); });
      ++n;
    }
  }

  void serve(Fd fd, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string how;
    std::string first = read_until_close(fd.get(), 30000, &how, kTagBytes);
    if (starts_with_h2_preface(first))  // the tag is in the SETTINGS after the preface
      first += read_until_close(fd.get(), 30000, &how, kH2TagBytes - first.size());
    uint32_t id = find_scenario_tag(first);
    if (auto it = tls_by_prefix_.find(first); it != tls_by_prefix_.end()) id = it->second;
    if (id >= scenarios_.size()) {
      std::lock_guard lock(mu_);
      errors_.push_back("backend: no scenario tag in the first bytes (" + how + "): " +
                        first.substr(0, 40));
      return;
    }
    const Scenario& s = scenarios_[id];
    auto allowed = [&s](size_t received) -> size_t {
      if (!s.paced()) return s.server_bytes.size();
      size_t answered = 0;
      for (size_t i = 0; i < s.request_ends.size() && s.request_ends[i] <= received; ++i)
        answered = s.response_ends[i];
      return answered;
    };
    PeerOptions options;
    options.slow_reader = std::bernoulli_distribution(0.2)(rng);
    options.max_write = std::bernoulli_distribution(0.3)(rng)
                            ? (s.server_bytes.size() < 65536 ? 7 : 1500)
                            : 65536;
    PeerResult r = run_peer(fd.get(), s.server_bytes, first, allowed, rng, options);
    std::lock_guard lock(mu_);
    results_[id] = std::move(r);
  }

  const std::vector<Scenario>& scenarios_;
  uint64_t seed_;
  uint16_t port_ = 0;
  Fd listener_;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;  // touched by the acceptor thread only, joined after it
  std::mutex mu_;
  std::map<uint32_t, PeerResult> results_;
  std::vector<std::string> errors_;
  std::map<std::string, uint32_t> tls_by_prefix_;  // first kTagBytes of a ClientHello -> id
};

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// (mode, relay workers): with 2, connections spread over two event loops (SO_REUSEPORT in
// proxy mode, the sk_lookup hash under interception) and the report merges both exactly.
class ByteExactness : public ::testing::TestWithParam<std::tuple<Interception, int>> {};

TEST_P(ByteExactness, RandomizedHttpAndOpaqueStreams) {
  const Interception mode = std::get<0>(GetParam());
  const int workers = std::get<1>(GetParam());
  if (mode != Interception::kProxy) {
    if (const std::string why = attach_unavailable_reason(); !why.empty()) {
      if (bpf_required()) FAIL() << "NETPROF_REQUIRE_BPF=1 but eBPF cannot run: " << why;
      GTEST_SKIP() << "eBPF interception unavailable: " << why;
    }
  }
  const uint64_t seed = seed_from_env();
  SCOPED_TRACE("NETPROF_TORTURE_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  constexpr uint32_t kHttp = 240, kOpaque = 40, kH2 = 28, kH2Upgrade = 12, kTls = 30;
  std::vector<Scenario> scenarios;
  for (uint32_t i = 0; i < kHttp; ++i) scenarios.push_back(make_http_scenario(i, rng));
  for (uint32_t i = 0; i < kOpaque; ++i)
    scenarios.push_back(make_opaque_scenario(static_cast<uint32_t>(scenarios.size()), rng, 1024 * 1024));
  for (uint32_t i = 0; i < kH2 + kH2Upgrade; ++i)
    scenarios.push_back(make_h2_scenario(static_cast<uint32_t>(scenarios.size()), rng, i >= kH2));
  for (uint32_t i = 0; i < kTls; ++i) {
    scenarios.push_back(make_tls_scenario(static_cast<uint32_t>(scenarios.size()), rng));
    ASSERT_GE(scenarios.back().client_bytes.size(), kTagBytes)
        << "OpenSSL did not make the TLS conversation planned for scenario " << i;
  }

  ScenarioBackend backend(scenarios, seed);
  ProxyConfig config;
  config.mode = mode;
  config.target_port = backend.port();
  config.extra_args = {"--workers", std::to_string(workers)};
  config.report_interval_s = 1.0;
  NetprofProcess netprof(config);
  ASSERT_TRUE(netprof.started());

  std::vector<PeerResult> client_results(scenarios.size());
  std::atomic<size_t> next{0};
  auto client_worker = [&](uint64_t worker_seed) {
    std::mt19937_64 crng(worker_seed);
    for (size_t i; (i = next.fetch_add(1)) < scenarios.size();) {
      const Scenario& s = scenarios[i];
      Fd fd = connect_loopback(netprof.port());
      if (!fd) {
        client_results[i].error = "connect failed";
        continue;
      }
      auto allowed = [&s](size_t received) -> size_t {
        if (!s.paced() || s.pipelined) return s.client_bytes.size();
        size_t k = 0;  // responses complete so far
        while (k < s.response_ends.size() && s.response_ends[k] <= received) ++k;
        return k < s.request_ends.size() ? s.request_ends[k] : s.client_bytes.size();
      };
      PeerOptions options;
      options.slow_reader = std::bernoulli_distribution(0.2)(crng);
      // Tiny writes split requests everywhere; megabytes get MTU-sized ones (bounded time).
      options.max_write = std::bernoulli_distribution(0.3)(crng)
                              ? (s.client_bytes.size() < 65536 ? 7 : 1500)
                              : 65536;
      client_results[i] = run_peer(fd.get(), s.client_bytes, "", allowed, crng, options);
    }
  };
  std::vector<std::thread> clients;
  for (int w = 0; w < 12; ++w) clients.emplace_back(client_worker, seed + 1000 + w);
  for (auto& t : clients) t.join();

  const nlohmann::json report = netprof.stop();
  EXPECT_EQ(netprof.exit_code(), 0) << netprof.stderr_text();
  for (const auto& e : backend.errors()) ADD_FAILURE() << e;
  const auto server_results = backend.results();

  // What the report must say: exchanges per protocol (HTTP/1 requests, HTTP/2 streams), TLS
  // connections per (server name, version), connection counters.
  std::map<std::string, ReportTotals> want;  // "h1", "h2"
  std::map<std::pair<std::string, std::string>, uint64_t> want_handshakes;
  uint64_t all_c2s = 0, all_s2c = 0, tls_connections = 0, tls_failures = 0, tls_c2s = 0,
           tls_s2c = 0;
  int mismatches = 0;
  for (const Scenario& s : scenarios) {
    all_c2s += s.client_bytes.size();
    all_s2c += s.server_bytes.size();
    if (s.kind == Kind::kHttp1 || s.kind == Kind::kH2) {
      ReportTotals& w = want[s.kind == Kind::kH2 ? "h2" : "h1"];
      w.count += s.exchanges;
      w.errors += s.errors;
      w.request_bytes += s.request_bytes;
      w.response_bytes += s.response_bytes;
      for (auto [code, n] : s.statuses) w.status[std::to_string(code)] += n;
    }
    if (s.kind == Kind::kTls) {
      ++tls_connections;
      tls_failures += s.tls_failure;
      tls_c2s += s.client_bytes.size();
      tls_s2c += s.server_bytes.size();
      if (!s.tls_failure) ++want_handshakes[{s.server_name, s.tls_version}];
    }
    const PeerResult& c = client_results[s.id];
    auto it = server_results.find(s.id);
    const bool ok = c.error.empty() && it != server_results.end() && it->second.error.empty() &&
                    c.received_sha256 == sha256_hex(s.server_bytes) &&
                    it->second.received_sha256 == sha256_hex(s.client_bytes);
    if (!ok && ++mismatches <= 10) {
      ADD_FAILURE() << "scenario " << s.id << " " << s.kind_name() << ": client error '"
                    << c.error << "', client got " << c.received_bytes << "/"
                    << s.server_bytes.size() << " bytes; server "
                    << (it == server_results.end()
                            ? std::string("never saw the connection")
                            : "error '" + it->second.error + "', got " +
                                  std::to_string(it->second.received_bytes) + "/" +
                                  std::to_string(s.client_bytes.size()) + " bytes");
    }
  }
  EXPECT_EQ(mismatches, 0);

  // The report counts exactly what was sent.
  for (const char* protocol : {"h1", "h2"}) {
    SCOPED_TRACE(protocol);
    const ReportTotals t = totals(report, protocol);
    const ReportTotals& w = want[protocol];
    EXPECT_EQ(t.count, w.count);
    EXPECT_EQ(t.errors, w.errors);
    EXPECT_EQ(t.status, w.status);
    EXPECT_EQ(t.request_bytes, w.request_bytes);
    EXPECT_EQ(t.response_bytes, w.response_bytes);
  }
  uint64_t connections = 0, failures = 0, c2s = 0, s2c = 0;
  std::map<std::pair<std::string, std::string>, uint64_t> handshakes;
  for (const auto& t : report.value("tls", nlohmann::json::array())) {
    connections += t.value("connections", uint64_t{0});
    failures += t.value("failures", uint64_t{0});
    c2s += t.value("bytes_client_to_server", uint64_t{0});
    s2c += t.value("bytes_server_to_client", uint64_t{0});
    const uint64_t done = t.value("handshakes", uint64_t{0});
    if (done) handshakes[{t.value("server_name", ""), t.value("version", "")}] += done;
  }
  EXPECT_EQ(connections, tls_connections);
  EXPECT_EQ(failures, tls_failures);
  EXPECT_EQ(c2s, tls_c2s);
  EXPECT_EQ(s2c, tls_s2c);
  EXPECT_EQ(handshakes, want_handshakes);
  EXPECT_EQ(connection_counter(report, "accepted"), scenarios.size());
  EXPECT_EQ(connection_counter(report, "unparsed"), kOpaque);  // never h2 or TLS
  EXPECT_EQ(connection_counter(report, "untracked_streams"), 0u);
  EXPECT_EQ(connection_counter(report, "upstream_failed"), 0u);
  EXPECT_EQ(connection_counter(report, "active"), 0u);
  EXPECT_EQ(connection_counter(report, "bytes_client_to_server"), all_c2s);
  EXPECT_EQ(connection_counter(report, "bytes_server_to_client"), all_s2c);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, ByteExactness,
    ::testing::Combine(::testing::Values(Interception::kProxy, Interception::kAttach,
                                         Interception::kAttachNoSkmsg),
                       ::testing::Values(1, 2)),
    [](const ::testing::TestParamInfo<std::tuple<Interception, int>>& p) {
      const char* mode = "AttachNoSkmsg";
      switch (std::get<0>(p.param)) {
        case Interception::kProxy: mode = "Proxy"; break;
        case Interception::kAttach: mode = "AttachSkmsg"; break;
        default: break;
      }
      return std::string(mode) + "Workers" + std::to_string(std::get<1>(p.param));
    });

}  // namespace
}  // namespace netprof::torture
