// Fail-open and clean-up: attachments are bpf_links owned by the process, so SIGKILL gives
// the pod its direct path back, and a clean stop leaves no program, link or map behind
// (checked with the kernel's own query APIs, not with netprof's bookkeeping).
#include <gtest/gtest.h>

#include <bpf/bpf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>

#include "base/cgroup_v2.h"
#include "intercept/interception.h"
#include "intercept/libbpf_log.h"
#include "pod_fixture.h"

namespace netprof::test {
namespace {

// Programs attached to `target_fd`; `effective` = including those inherited from parent
// cgroups (netprof attaches sock_ops to its own cgroup, which may contain the pod's).
std::vector<uint32_t> attached(int target_fd, bpf_attach_type type, bool effective = false) {
  uint32_t ids[64];
  uint32_t count = 64;
  uint32_t flags = 0;
  if (bpf_prog_query(target_fd, type, effective ? BPF_F_QUERY_EFFECTIVE : 0, &flags, ids,
                     &count) != 0)
    return {};
  return std::vector<uint32_t>(ids, ids + count);
}

UniqueFd open_dir(const std::string& path) {
  return UniqueFd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

uint32_t object_id(int fd) {
  bpf_map_info info{};  // map, prog and link info all start with type + id
  __u32 length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &length) != 0) return 0;
  return info.id;
}

bool gone(int (*get_fd_by_id)(__u32), uint32_t id) {
  const int fd = get_fd_by_id(id);
  if (fd >= 0) close(fd);
  return fd < 0 && errno == ENOENT;
}

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NETPROF_NEED_BPF();
    set_libbpf_verbose(std::getenv("NETPROF_TEST_VERBOSE") != nullptr);
    std::string error;
    pod_ = TestPod::create(error);
    ASSERT_TRUE(pod_) << error;
    cgroup_ = TestCgroup::create(error);
    ASSERT_TRUE(cgroup_) << error;
    cgroup_fd_ = open_dir(cgroup_->path());
    baseline_ = PodAttachments();
  }

  // Every program that acts on the pod: sk_lookup on its netns, everything effective in
  // its cgroup.
  std::vector<uint32_t> PodAttachments() const {
    std::vector<uint32_t> ids = attached(pod_->pod().fd(), BPF_SK_LOOKUP);
    for (auto type : {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_SOCK_OPS})
      for (uint32_t id : attached(cgroup_fd_.get(), type, true)) ids.push_back(id);
    return ids;
  }

  InterceptOptions Options() const {
    InterceptOptions options;
    options.netns_path = pod_->pod_path();
    options.cgroup_path = cgroup_->path();
    options.inbound_ports = {8080};
    options.outbound_ports = {9090};
    options.skmsg_mode = SkMsgMode::kOn;  // every program and attachment netprof has
    return options;
  }

  // Programs acting on the pod that were not there before the test (other software may
  // have its own programs on parent cgroups).
  std::vector<uint32_t> Ours() const {
    std::vector<uint32_t> ours;
    for (uint32_t id : PodAttachments())
      if (std::find(baseline_.begin(), baseline_.end(), id) == baseline_.end()) ours.push_back(id);
    return ours;
  }
  size_t AttachedToPod() const { return Ours().size(); }

  std::string PeerOfOneRequest(TestHttpServer& app, const std::string& path) {
    std::string error;
    const std::string response = exchange_in(pod_->client(), pod_->home(),
                                             address(pod_->pod_ip4 + ":8080"), get_request(path), &error);
    EXPECT_NE(response.find("hello " + path), std::string::npos) << error;
    const auto peers = app.peers();
    return peers.empty() ? "" : peers.back();
  }

  std::unique_ptr<TestPod> pod_;
  std::unique_ptr<TestCgroup> cgroup_;
  UniqueFd cgroup_fd_;
  std::vector<uint32_t> baseline_;
};

TEST_F(LifecycleTest, KillDashNineMidLoadFailsOpen) {
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The "netprof" process: attach, relay, and never clean up.
    auto interception = Interception::start(Options());
    if (!interception) _exit(3);
    TestRelay relay((*interception)->take_listeners());
    if (write(ready[1], "1", 1) != 1) _exit(4);
    while (true) pause();
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1) << "the attaching child failed";
  close(ready[0]);
  EXPECT_EQ(AttachedToPod(), 4u);  // sk_lookup, connect4, connect6, sock_ops

  TestHttpServer app(pod_->pod(), pod_->home(), address("[::]:8080"));
  // Relayed: the app sees the relay's upstream, whose source is the pod's own address.
  EXPECT_NE(PeerOfOneRequest(app, "/relayed").find(pod_->pod_ip4 + "]:"), std::string::npos);
  // Leave a relayed connection open, as under load, then kill.
  UniqueFd in_flight;
  {
    NetnsGuard in_client(pod_->client(), pod_->home());
    in_flight.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  }
  const SocketAddress app_address = address(pod_->pod_ip4 + ":8080");
  ASSERT_EQ(connect(in_flight.get(), app_address.get(), app_address.length), 0);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));

  EXPECT_TRUE(wait_until([&] { return AttachedToPod() == 0; }, std::chrono::seconds(1)))
      << "attachments outlived the process";
  // Direct: the app sees the client's own address.
  EXPECT_NE(PeerOfOneRequest(app, "/direct").find(pod_->client_ip4 + "]:"), std::string::npos);
  // And the pod's outbound calls go straight out again.
  TestHttpServer remote(pod_->client(), pod_->home(), address("[::]:9090"));
  if (run("command -v curl") == 0) {
    const ProcessResult curl = run_in(pod_->pod(), cgroup_->path(),
                                      {"curl", "-s", "--max-time", "5", "http://" + pod_->client_ip4 + ":9090/out"});
    EXPECT_EQ(curl.output, "hello /out");
    EXPECT_EQ(remote.requests().size(), 1u);
  }
}

TEST_F(LifecycleTest, CleanStopLeavesNothingAttachedOrLoaded) {
  auto own = own_cgroup_dir();
  ASSERT_TRUE(own) << own.error();
  UniqueFd own_fd = open_dir(*own);
  const auto own_sock_ops_before = attached(own_fd.get(), BPF_CGROUP_SOCK_OPS);

  std::vector<uint32_t> links, programs, maps;
  {
    auto interception = Interception::start(Options());
    ASSERT_TRUE(interception) << interception.error();
    TestHttpServer app(pod_->pod(), pod_->home(), address("[::]:8080"));
    TestRelay relay((*interception)->take_listeners());
    EXPECT_NE(PeerOfOneRequest(app, "/once").find(pod_->pod_ip4 + "]:"), std::string::npos);

    EXPECT_EQ(AttachedToPod(), 4u);
    links = (*interception)->link_ids();
    EXPECT_GE(links.size(), 4u);
    programs = Ours();
    const InterceptPrograms& p = (*interception)->programs();
    for (int fd : {p.inbound_ports_fd(), p.outbound_ports_fd(), p.relay_listeners_fd(),
                   p.upstream_guard_fd(), p.guard_cookies_fd(), p.orig_dst_by_tuple_fd(),
                   p.local_peers_fd(), p.counters_fd()})
      maps.push_back(object_id(fd));
  }
  EXPECT_EQ(AttachedToPod(), 0u);
  EXPECT_EQ(attached(own_fd.get(), BPF_CGROUP_SOCK_OPS), own_sock_ops_before);
  for (uint32_t id : links) EXPECT_TRUE(gone(bpf_link_get_fd_by_id, id)) << "link " << id;
  // Programs and maps are freed after an RCU grace period.
  for (uint32_t id : programs)
    EXPECT_TRUE(wait_until([&] { return gone(bpf_prog_get_fd_by_id, id); })) << "prog " << id;
  for (uint32_t id : maps)
    EXPECT_TRUE(wait_until([&] { return gone(bpf_map_get_fd_by_id, id); })) << "map " << id;
}

}  // namespace
}  // namespace netprof::test
