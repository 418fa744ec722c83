// Test fixtures for real-kernel interception tests: a simulated pod (its own netns, a veth
// to a "client" netns that plays the outside world, IPv4 and IPv6 addresses, its own cgroup
// v2), small blocking HTTP servers and clients that live in a chosen netns, and the
// privilege check. Every resource is RAII and named "netprof-t-<pid>-<n>" so a crashed run
// is recognisable and parallel runs do not collide.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/exchange.h"
#include "intercept/netns.h"
#include "base/unique_fd.h"
#include "relay/relay.h"
#include "stats/connection_counters.h"

namespace netprof::test {

// "" when root and BPF work here; otherwise why not.
std::string bpf_unavailable_reason();
bool bpf_required();  // NETPROF_REQUIRE_BPF=1

#define NETPROF_NEED_BPF()                                                    \
  do {                                                                        \
    const std::string reason_ = ::netprof::test::bpf_unavailable_reason();    \
    if (!reason_.empty()) {                                                   \
      if (::netprof::test::bpf_required()) FAIL() << reason_;                 \
      GTEST_SKIP() << reason_;                                                \
    }                                                                         \
  } while (0)

std::string unique_name();  // netprof-t-<pid>-<n>
int run(const std::string& command);  // sh -c, output discarded; exit status
bool wait_until(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));
SocketAddress address(const std::string& text);  // "10.1.2.3:80", "[::1]:80"

// Two namespaces joined by a veth: `client` (outside world) and `pod`.
class TestPod {
 public:
  static std::unique_ptr<TestPod> create(std::string& error);
  ~TestPod();
  const Netns& pod() const { return *pod_; }
  const Netns& client() const { return *client_; }
  const Netns& home() const { return *home_; }
  std::string pod_path() const { return "/var/run/netns/" + pod_name_; }
  std::string pod_name() const { return pod_name_; }
  std::string client_name() const { return client_name_; }

  // Addresses: the pod side and the client side of the veth.
  std::string pod_ip4, client_ip4, pod_ip6, client_ip6;

 private:
  TestPod() = default;
  std::string pod_name_, client_name_;
  std::unique_ptr<Netns> pod_, client_, home_;
};

// A cgroup under the cgroup2 mount; on destruction its processes move to the parent.
class TestCgroup {
 public:
  static std::unique_ptr<TestCgroup> create(std::string& error);
  ~TestCgroup();
  const std::string& path() const { return path_; }

 private:
  std::string path_, parent_;
};

// A listening socket made inside `ns`. `dual_stack` = [::]:port accepting IPv4 too.
UniqueFd listen_in(const Netns& ns, const Netns& home, const SocketAddress& at);

// A blocking HTTP/1.1 server on its own thread: reads one request per connection (headers
// and a Content-Length body), answers 200 with body "hello <path>", closes.
class TestHttpServer {
 public:
  // `body_size` > 0: answer with that many bytes of a fixed pattern, written by sendfile()
  // (the sendpage path of sockmap) instead of "hello <path>" written by send().
  TestHttpServer(const Netns& ns, const Netns& home, const SocketAddress& at,
                 size_t body_size = 0);
  ~TestHttpServer();
  uint16_t port() const { return port_; }
  std::vector<std::string> requests() const;  // the bytes of each request, as received
  std::vector<std::string> peers() const;     // peer address of each connection

 private:
  void serve();
  UniqueFd listener_;
  uint16_t port_ = 0;
  size_t body_size_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> requests_, peers_;
  std::thread thread_;
};

// Sends `request` from a socket made in `ns` to `to`; returns the whole response (until
// EOF) or "" with `error` set. Receive timeout 5 s.
std::string exchange_in(const Netns& ns, const Netns& home, const SocketAddress& to,
                        const std::string& request, std::string* error = nullptr);
std::string get_request(const std::string& path, const std::string& body = "");
std::string pattern_bytes(size_t size);  // deterministic, not all the same byte

// The real relay on a thread, recording what its tracker reports.
class TestRelay : public ExchangeSink {
 public:
  explicit TestRelay(std::vector<ListenerSpec> listeners);
  ~TestRelay() override;
  void on_exchange(const Exchange& exchange) override;
  void on_unparsed_connection(uint32_t scope) override;
  std::vector<std::string> paths() const;  // "<scope> <path> <status>" per exchange
  const ConnectionCounters& counters() const { return counters_; }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> paths_;
  ConnectionCounters counters_;
  std::unique_ptr<Relay> relay_;
  std::thread thread_;
};

}  // namespace netprof::test

namespace netprof::test {

struct ProcessResult {
  int status = -1;     // exit status, -1 if it did not exit normally
  std::string output;  // stdout
};

// Runs `argv` as a child process inside `ns` and, unless `cgroup` is empty, inside that
// cgroup v2 directory (it joins before exec, so every socket it makes belongs there).
ProcessResult run_in(const Netns& ns, const std::string& cgroup,
                     const std::vector<std::string>& argv);

// The cgroup v2 directory this process is in, and a way to move it (all threads) there.
std::string current_cgroup();
bool move_self_to_cgroup(const std::string& dir);

}  // namespace netprof::test
