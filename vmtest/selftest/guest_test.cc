// Checks, from inside the vmtest guest, what netprof's privileged tests take for granted: the
// file systems mounted, the bpf() syscall usable, loopback TCP and veth pairs working.
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace {

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { if (fd >= 0) close(fd); }
};

// File system types mounted anywhere, from /proc/self/mountinfo (field after " - ").
std::set<std::string> mounted_fs_types() {
  std::ifstream in("/proc/self/mountinfo");
  std::set<std::string> types;
  for (std::string line; std::getline(in, line);) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string type;
    rest >> type;
    types.insert(type);
  }
  return types;
}

TEST(Guest, MountsWhatNetprofNeeds) {
  auto types = mounted_fs_types();
  for (const char* fs : {"proc", "sysfs", "cgroup2", "bpf", "tmpfs"}) {
    EXPECT_TRUE(types.count(fs)) << fs << " is not mounted in the guest";
  }
}

TEST(Guest, BpfSyscallCreatesAMap) {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 8;
  attr.max_entries = 1;
  Fd map(static_cast<int>(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr))));
  ASSERT_GE(map.fd, 0) << "bpf(BPF_MAP_CREATE): " << std::strerror(errno);
}

TEST(Guest, KernelHasBtf) {
  EXPECT_EQ(access("/sys/kernel/btf/vmlinux", R_OK), 0) << "no /sys/kernel/btf/vmlinux: CO-RE cannot load";
}

TEST(Guest, LoopbackCarriesTcp) {
  Fd listener(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), len), 0) << std::strerror(errno);
  ASSERT_EQ(listen(listener.fd, 1), 0);
  ASSERT_EQ(getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  Fd client(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_EQ(connect(client.fd, reinterpret_cast<sockaddr*>(&addr), len), 0)
      << "connect to 127.0.0.1: " << std::strerror(errno) << " (is lo up?)";
  Fd server(accept(listener.fd, nullptr, nullptr));
  ASSERT_GE(server.fd, 0);

  const std::string sent = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_EQ(write(client.fd, sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  std::string got(sent.size(), '\0');
  size_t have = 0;
  while (have < got.size()) {
    ssize_t n = read(server.fd, got.data() + have, got.size() - have);
    ASSERT_GT(n, 0);
    have += static_cast<size_t>(n);
  }
  EXPECT_EQ(got, sent);
}

TEST(Guest, CreatesAVethPair) {
  ASSERT_EQ(std::system("ip link add vmtest0 type veth peer name vmtest1"), 0)
      << "no veth pair: is the veth module loaded?";
  EXPECT_EQ(std::system("ip link show vmtest1 >/dev/null"), 0);
  EXPECT_EQ(std::system("ip link del vmtest0"), 0);
}

// Lets `vmtest/run --selftest --env VMTEST_BREAK=1` prove that a failing test fails the run.
TEST(Guest, NotBrokenOnPurpose) {
  EXPECT_EQ(std::getenv("VMTEST_BREAK"), nullptr) << "VMTEST_BREAK is set: failing on purpose";
}

}  // namespace
