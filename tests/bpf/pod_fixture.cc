#include "pod_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <signal.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/cgroup_v2.h"
#include "http/message_reader.h"
#include "intercept/socket_keys.h"

namespace netprof::test {

std::string bpf_unavailable_reason() {
  if (geteuid() != 0) return "needs root (real BPF, netns and cgroups)";
  if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_LOOKUP, nullptr) != 1)
    return "kernel has no sk_lookup BPF programs (needs Linux 5.9+)";
  if (!cgroup2_mount_point().ok()) return "no cgroup v2 mount";
  if (run("command -v ip") != 0) return "iproute2 'ip' not installed";
  return "";
}

bool bpf_required() {
  const char* value = std::getenv("NETPROF_REQUIRE_BPF");
  return value && std::string(value) == "1";
}

std::string unique_name() {
  static std::atomic<int> counter{0};
  return "netprof-t-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

int run(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

SocketAddress address(const std::string& text) {
  SocketAddress out;
  std::string error;
  if (!parse_socket_address(text, "127.0.0.1", out, error)) ADD_FAILURE() << error;
  return out;
}

namespace {

// "netprof-t-<pid>-..." made by a test process that no longer exists (killed by a timeout,
// say, so its destructors never ran).
bool is_stale(const std::string& name) {
  const std::string prefix = "netprof-t-";
  if (name.rfind(prefix, 0) != 0) return false;
  const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
  return pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// Once per process: remove what crashed runs left behind, so they cannot pile up.
void remove_stale_test_resources() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (DIR* dir = opendir("/var/run/netns")) {
      while (dirent* entry = readdir(dir))
        if (is_stale(entry->d_name)) run(std::string("ip netns del ") + entry->d_name);
      closedir(dir);
    }
    auto mount = cgroup2_mount_point();
    if (!mount) return;
    if (DIR* dir = opendir(mount->c_str())) {
      while (dirent* entry = readdir(dir))
        if (is_stale(entry->d_name)) rmdir((*mount + "/" + entry->d_name).c_str());
      closedir(dir);
    }
  });
}

}  // namespace

std::unique_ptr<TestPod> TestPod::create(std::string& error) {
  remove_stale_test_resources();
  std::unique_ptr<TestPod> pod(new TestPod());
  const std::string base = unique_name();
  pod->pod_name_ = base + "-pod";
  pod->client_name_ = base + "-cli";
  pod->pod_ip4 = "10.77.0.2";
  pod->client_ip4 = "10.77.0.1";
  pod->pod_ip6 = "fd77::2";
  pod->client_ip6 = "fd77::1";
  const std::string p = "ip -n " + pod->pod_name_ + " ";
  const std::string c = "ip -n " + pod->client_name_ + " ";
  const std::vector<std::string> steps = {
      "ip netns add " + pod->pod_name_,
      "ip netns add " + pod->client_name_,
      c + "link add veth0 type veth peer name veth0 netns " + pod->pod_name_,
      p + "link set lo up",
      c + "link set lo up",
      p + "addr add " + pod->pod_ip4 + "/24 dev veth0",
      c + "addr add " + pod->client_ip4 + "/24 dev veth0",
      p + "-6 addr add " + pod->pod_ip6 + "/64 dev veth0 nodad",
      c + "-6 addr add " + pod->client_ip6 + "/64 dev veth0 nodad",
      p + "link set veth0 up",
      c + "link set veth0 up",
  };
  for (const std::string& step : steps) {
    if (run(step) != 0) {
      error = "failed: " + step;
      return nullptr;  // the destructor removes what was made
    }
  }
  auto pod_ns = Netns::open(pod->pod_path());
  auto client_ns = Netns::open("/var/run/netns/" + pod->client_name_);
  auto home_ns = Netns::open("");
  if (!pod_ns || !client_ns || !home_ns) {
    error = "cannot open the test namespaces";
    return nullptr;
  }
  pod->pod_ = std::make_unique<Netns>(std::move(*pod_ns));
  pod->client_ = std::make_unique<Netns>(std::move(*client_ns));
  pod->home_ = std::make_unique<Netns>(std::move(*home_ns));
  return pod;
}

TestPod::~TestPod() {
  // Deleting a netns deletes the veth end inside it, and with it the peer.
  if (!client_name_.empty()) run("ip netns del " + client_name_);
  if (!pod_name_.empty()) run("ip netns del " + pod_name_);
}

std::unique_ptr<TestCgroup> TestCgroup::create(std::string& error) {
  remove_stale_test_resources();
  auto mount = cgroup2_mount_point();
  if (!mount) {
    error = mount.error();
    return nullptr;
  }
  auto cgroup = std::make_unique<TestCgroup>();
  cgroup->parent_ = *mount;
  cgroup->path_ = *mount + "/" + unique_name();
  if (mkdir(cgroup->path_.c_str(), 0755) != 0) {
    error = "mkdir " + cgroup->path_ + ": " + std::strerror(errno);
    cgroup->path_.clear();
    return nullptr;
  }
  return cgroup;
}

TestCgroup::~TestCgroup() {
  if (path_.empty()) return;
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::ifstream procs(path_ + "/cgroup.procs");
    for (std::string pid; std::getline(procs, pid);) {
      std::ofstream parent(parent_ + "/cgroup.procs");
      parent << pid << std::flush;
    }
    if (rmdir(path_.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "could not remove cgroup " << path_;
}

UniqueFd listen_in(const Netns& ns, const Netns& home, const SocketAddress& at) {
  NetnsGuard guard(ns, home);
  if (!guard.entered()) return UniqueFd();
  UniqueFd fd(socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1, zero = 0;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (at.family() == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (bind(fd.get(), at.get(), at.length) != 0 || listen(fd.get(), 128) != 0) return UniqueFd();
  return fd;
}

namespace {

void set_timeouts(int fd) {
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string pattern_bytes(size_t size) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return bytes;
}

TestHttpServer::TestHttpServer(const Netns& ns, const Netns& home, const SocketAddress& at,
                               size_t body_size)
    : listener_(listen_in(ns, home, at)), body_size_(body_size) {
  EXPECT_TRUE(listener_.valid()) << "test server cannot listen on " << at.to_string();
  port_ = port_of(local_address(listener_.get()));
  thread_ = std::thread([this] { serve(); });
}

TestHttpServer::~TestHttpServer() {
  stop_ = true;
  thread_.join();
}

std::vector<std::string> TestHttpServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<std::string> TestHttpServer::peers() const {
  std::lock_guard lock(mutex_);
  return peers_;
}

void TestHttpServer::serve() {
  while (!stop_) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    set_timeouts(conn.get());
    HttpMessageReader reader(HttpMessageKind::kRequest);
    std::string carry, data;
    const auto request = read_http_message(conn.get(), reader, carry, 5000, &data);
    const std::string path = request.ok() ? request->target : "?";
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(data);
      peers_.push_back(peer_address(conn.get()).to_string());
    }
    if (body_size_ > 0) {
      send_all(conn.get(), "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_size_) +
                               "\r\nConnection: close\r\n\r\n");
      UniqueFd file(memfd_create("netprof-test-body", MFD_CLOEXEC));
      const std::string body = pattern_bytes(body_size_);
      if (write(file.get(), body.data(), body.size()) != static_cast<ssize_t>(body.size())) continue;
      off_t offset = 0;
      while (static_cast<size_t>(offset) < body_size_)
        if (sendfile(conn.get(), file.get(), &offset, body_size_ - static_cast<size_t>(offset)) <= 0)
          break;
      continue;
    }
    const std::string body = "hello " + path;
    send_all(conn.get(), "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\nConnection: close\r\n\r\n" + body);
  }
}

std::string get_request(const std::string& path, const std::string& body) {
  std::string request = (body.empty() ? "GET " : "POST ") + path +
                        " HTTP/1.1\r\nHost: pod\r\nUser-Agent: netprof-test\r\n";
  if (!body.empty()) request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return request + "\r\n" + body;
}

std::string exchange_in(const Netns& ns, const Netns& home, const SocketAddress& to,
                        const std::string& request, std::string* error) {
  UniqueFd fd;
  {
    NetnsGuard guard(ns, home);
    fd.reset(socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  }
  set_timeouts(fd.get());
  auto fail = [&](const char* what) {
    if (error) *error = std::string(what) + " " + to.to_string() + ": " + std::strerror(errno);
    return std::string();
  };
  if (connect(fd.get(), to.get(), to.length) != 0) return fail("connect");
  if (!send_all(fd.get(), request)) return fail("send");
  std::string response;
  char buffer[65536];
  while (true) {
    const ssize_t n = recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0) return fail("recv");
    if (n == 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  return response;
}

TestRelay::TestRelay(std::vector<ListenerSpec> listeners)
    : relay_(std::make_unique<Relay>(RelayOptions{}, *this, counters_)) {
  for (ListenerSpec& spec : listeners) relay_->add_listener(std::move(spec));
  thread_ = std::thread([this] { relay_->run(); });
}

TestRelay::~TestRelay() {
  relay_->request_stop();
  thread_.join();
}

void TestRelay::on_exchange(const Exchange& exchange) {
  std::lock_guard lock(mutex_);
  paths_.push_back(std::to_string(exchange.scope) + " " + std::string(exchange.path) + " " +
                   std::to_string(exchange.status));
}

void TestRelay::on_unparsed_connection(uint32_t scope) {
  std::lock_guard lock(mutex_);
  paths_.push_back(std::to_string(scope) + " unparsed");
}

std::vector<std::string> TestRelay::paths() const {
  std::lock_guard lock(mutex_);
  return paths_;
}

}  // namespace netprof::test

#include <sched.h>
#include <sys/wait.h>

namespace netprof::test {

ProcessResult run_in(const Netns& ns, const std::string& cgroup,
                     const std::vector<std::string>& argv) {
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe
  // calls until exec.
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const std::string procs = cgroup.empty() ? "" : cgroup + "/cgroup.procs";
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    if (!procs.empty()) {
      const int fd = open(procs.c_str(), O_WRONLY);
      if (fd < 0 || write(fd, "0", 1) != 1) _exit(120);  // "0" = the writing process
      close(fd);
    }
    if (setns(ns.fd(), CLONE_NEWNET) != 0) _exit(121);
    dup2(out[1], STDOUT_FILENO);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  ProcessResult result;
  char buffer[4096];
  for (ssize_t n; (n = read(out[0], buffer, sizeof(buffer))) > 0;)
    result.output.append(buffer, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string current_cgroup() {
  auto dir = own_cgroup_dir();
  return dir ? *dir : "";
}

bool move_self_to_cgroup(const std::string& dir) {
  std::ofstream procs(dir + "/cgroup.procs");
  procs << getpid() << std::flush;
  return procs.good();
}

}  // namespace netprof::test
