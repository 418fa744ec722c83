// The pure parts of interception, no privileges needed: port lists, mountinfo parsing,
// cgroup nesting, and the address <-> BPF key conversions the dialers rely on.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cerrno>

#include "intercept/bpf_programs.h"
#include "base/cgroup_v2.h"
#include "intercept/interception.h"
#include "intercept/socket_keys.h"

namespace netprof {
namespace {

SocketAddress parse(const std::string& text) {
  SocketAddress out;
  std::string error;
  EXPECT_TRUE(parse_socket_address(text, "127.0.0.1", out, error)) << error;
  return out;
}

TEST(PortList, ParsesCommaSeparatedPorts) {
  auto ports = parse_port_list("80,8080,,443");
  ASSERT_TRUE(ports) << ports.error();
  EXPECT_EQ(*ports, (std::vector<uint16_t>{80, 8080, 443}));
  EXPECT_TRUE(parse_port_list("")->empty());
}

TEST(PortList, RejectsWhatIsNotAPort) {
  for (const char* bad : {"0", "65536", "80x", "-1", "http"}) {
    auto ports = parse_port_list(bad);
    ASSERT_FALSE(ports) << bad;
    EXPECT_NE(ports.error().find(bad), std::string::npos) << ports.error();
  }
  std::string many;
  for (int port = 1; port <= NETPROF_MAX_PORTS + 1; ++port) many += std::to_string(port) + ",";
  EXPECT_FALSE(parse_port_list(many));
}

TEST(Cgroup2Mount, FoundInAHybridLayout) {
  const std::string mountinfo =
      "25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
      "32 25 0:27 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"
      "33 32 0:28 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n"
      "34 32 0:29 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory\n";
  auto mount = find_cgroup2_mount(mountinfo);
  ASSERT_TRUE(mount) << mount.error();
  EXPECT_EQ(*mount, "/sys/fs/cgroup/unified");
}

TEST(Cgroup2Mount, UnescapesSpacesAndReportsAbsence) {
  auto mount = find_cgroup2_mount("40 1 0:30 / /mnt/my\\040cgroups rw - cgroup2 none rw\n");
  ASSERT_TRUE(mount);
  EXPECT_EQ(*mount, "/mnt/my cgroups");
  EXPECT_FALSE(find_cgroup2_mount("25 30 0:23 / /sys rw - sysfs sysfs rw\n"));
}

TEST(CgroupNesting, PrefixMustEndAtAPathComponent) {
  EXPECT_TRUE(cgroup_is_within("/cg/a/b", "/cg/a"));
  EXPECT_TRUE(cgroup_is_within("/cg/a", "/cg/a"));
  EXPECT_FALSE(cgroup_is_within("/cg/ab", "/cg/a"));
  EXPECT_FALSE(cgroup_is_within("/cg/a", "/cg/a/b"));
}

TEST(SocketKeys, TupleFromAddressesUsesHostOrderPortsAndNetworkOrderIps) {
  netprof_tuple tuple;
  ASSERT_TRUE(make_tuple(parse("10.0.0.2:8080"), parse("10.0.0.9:40000"), tuple));
  EXPECT_EQ(tuple.family, AF_INET);
  EXPECT_EQ(tuple.local_port, 8080);
  EXPECT_EQ(tuple.remote_port, 40000);
  EXPECT_EQ(tuple.local_ip[0], inet_addr("10.0.0.2"));
  EXPECT_EQ(tuple.remote_ip[0], inet_addr("10.0.0.9"));
  EXPECT_EQ(tuple.local_ip[1] | tuple.local_ip[2] | tuple.local_ip[3] | tuple.pad, 0u);
  EXPECT_FALSE(make_tuple(parse("10.0.0.2:1"), parse("[::1]:1"), tuple));
}

TEST(SocketKeys, EndpointRoundTripsBothFamilies) {
  for (const char* text : {"192.168.1.20:443", "[fd00::7]:8443"}) {
    const SocketAddress address = parse(text);
    EXPECT_EQ(endpoint_address(address_endpoint(address)).to_string(), address.to_string());
  }
}

// A load or attach failure with a cause the user can change says what to change; only the
// rest points at --verbose (the verifier log).
TEST(BpfFailure, SaysWhatToChange) {
  const std::string memory = bpf_failure("cannot load", ENOMEM).message;
  EXPECT_NE(memory.find("memory limit"), std::string::npos) << memory;
  EXPECT_NE(memory.find("bpf_pending_entries"), std::string::npos) << memory;
  EXPECT_EQ(memory.find("--verbose"), std::string::npos) << memory;
  const std::string permission = bpf_failure("cannot load", EPERM).message;
  EXPECT_NE(permission.find("CAP_BPF"), std::string::npos) << permission;
  EXPECT_EQ(permission.find("--verbose"), std::string::npos) << permission;
  const std::string other = bpf_failure("cannot load", EINVAL).message;
  EXPECT_NE(other.find("--verbose"), std::string::npos) << other;
}

}  // namespace
}  // namespace netprof
