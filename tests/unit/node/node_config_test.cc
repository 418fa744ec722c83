// `netprof node` settings: file < environment < flags, and every bad value rejected with a
// message that names the field and where it came from.
#include "node/node_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

namespace netprof {
namespace {

using nlohmann::json;

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/netprof-node-config-XXXXXX";
    const int fd = mkstemp(name);
    path_ = name;
    close(fd);
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(NodeConfig, FileThenEnvironmentThenFlags) {
  TempFile file(R"({"inbound_ports": [80, 8080], "expire_after_s": 60, "routes": ["/users/{id}"],
                    "max_routes": 500, "skmsg": false, "admin_address": "127.0.0.1:9999"})");
  auto config = load_node_config(file.path(),
                                 {{"NETPROF_MAX_ROUTES", "700"}, {"NETPROF_EXPIRE_AFTER_S", "30"}},
                                 {{"expire_after_s", "5"}});
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->inbound_ports, (std::vector<uint16_t>{80, 8080}));
  EXPECT_EQ(config->routes, (std::vector<std::string>{"/users/{id}"}));
  EXPECT_FALSE(config->skmsg);
  EXPECT_EQ(config->admin_address, "127.0.0.1:9999");
  EXPECT_EQ(config->max_routes, 700u);          // environment over file
  EXPECT_DOUBLE_EQ(config->expire_after_s, 5);  // flag over environment over file
}

TEST(NodeConfig, TextValuesOfEveryKind) {
  auto config = load_node_config("",
                                 {{"NETPROF_INBOUND_PORTS", "80,443"},
                                  {"NETPROF_IPV6", "false"},
                                  {"NETPROF_ROUTES", "/a/{x},/b/**"},
                                  {"NETPROF_RESCAN_INTERVAL_S", "2.5"},
                                  {"NETPROF_CGROUP_ROOT", "/sys/fs/cgroup/kubepods.slice"},
                                  {"UNRELATED", "x"}},
                                 {{"outbound_ports", "5432"}});
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->inbound_ports, (std::vector<uint16_t>{80, 443}));
  EXPECT_EQ(config->outbound_ports, (std::vector<uint16_t>{5432}));
  EXPECT_FALSE(config->ipv6);
  EXPECT_TRUE(config->ipv4);
  EXPECT_EQ(config->routes.size(), 2u);
  EXPECT_DOUBLE_EQ(config->rescan_interval_s, 2.5);
  EXPECT_EQ(config->cgroup_root, "/sys/fs/cgroup/kubepods.slice");
}

struct BadCase {
  const char* json_text;  // the file's contents
  const char* expected;   // substring of the error: the field and the problem
};

class BadFileTest : public testing::TestWithParam<BadCase> {};

TEST_P(BadFileTest, RejectedNamingTheField) {
  TempFile file(GetParam().json_text);
  auto config = load_node_config(file.path(), {}, {{"inbound_ports", "80"}});
  ASSERT_FALSE(config.ok()) << GetParam().json_text;
  EXPECT_NE(config.error().find(GetParam().expected), std::string::npos) << config.error();
  EXPECT_NE(config.error().find(file.path()), std::string::npos) << config.error();
}

INSTANTIATE_TEST_SUITE_P(
    Fields, BadFileTest,
    testing::Values(BadCase{R"({"outbound_ports": [80, 70000]})", "outbound_ports: item 1: 70000"},
                    BadCase{R"({"outbound_ports": "80"})", "outbound_ports: expected a list"},
                    BadCase{R"({"max_routes": 0})", "max_routes: 0 is out of range"},
                    BadCase{R"({"max_routes": 1.5})", "max_routes: expected a whole number"},
                    BadCase{R"({"expire_after_s": -1})", "expire_after_s: -1 is out of range"},
                    BadCase{R"({"rescan_interval_s": "soon"})",
                            "rescan_interval_s: expected a number"},
                    BadCase{R"({"skmsg": "yes"})", "skmsg: expected true or false"},
                    BadCase{R"({"routes": ["/ok", "no-slash"]})", "routes: item 1: 'no-slash'"},
                    BadCase{R"({"admin_address": "localhost:notaport"})", "admin_address:"},
                    BadCase{R"({"inbound_port": [80]})", "unknown field 'inbound_port'"},
                    BadCase{R"([80])", "expected a JSON object"},
                    BadCase{R"({"inbound_ports": [80],)", "not valid JSON"}));

TEST(NodeConfig, BadEnvironmentAndFlagNameTheirSource) {
  auto from_env = load_node_config("", {{"NETPROF_INBOUND_PORTS", "80,http"}}, {});
  ASSERT_FALSE(from_env.ok());
  EXPECT_NE(from_env.error().find("environment NETPROF_INBOUND_PORTS: inbound_ports: 'http'"),
            std::string::npos)
      << from_env.error();
  auto from_flag = load_node_config("", {}, {{"inbound_ports", "80"}, {"ipv4", "maybe"}});
  ASSERT_FALSE(from_flag.ok());
  EXPECT_NE(from_flag.error().find("flag --ipv4: ipv4: 'maybe' is not a boolean"),
            std::string::npos)
      << from_flag.error();
}

TEST(NodeConfig, CrossFieldChecks) {
  auto no_ports = load_node_config("", {}, {});
  ASSERT_FALSE(no_ports.ok());
  EXPECT_NE(no_ports.error().find("inbound_ports: no ports"), std::string::npos);
  auto no_family =
      load_node_config("", {}, {{"inbound_ports", "80"}, {"ipv4", "0"}, {"ipv6", "no"}});
  ASSERT_FALSE(no_family.ok());
  EXPECT_NE(no_family.error().find("ipv4: both"), std::string::npos);
  std::string many;
  for (int p = 1; p <= 65; ++p) many += std::to_string(p) + ",";
  auto too_many = load_node_config("", {}, {{"inbound_ports", many}});
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().find("inbound_ports: at most"), std::string::npos);
  auto missing = load_node_config("/nonexistent/netprof.json", {}, {{"inbound_ports", "80"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("/nonexistent/netprof.json"), std::string::npos);
}

// A folder is an easy mistake (a ConfigMap mounted as a volume): it used to abort with an
// uncaught std::ios_failure. One key in it is read; otherwise the error says what is there.
TEST(NodeConfig, ConfigFolderWithOneFileIsReadOtherwiseRefused) {
  char name[] = "/tmp/netprof-node-config-dir-XXXXXX";
  ASSERT_NE(mkdtemp(name), nullptr);
  const std::string dir = name;
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};

  auto empty = load_node_config(dir, {}, {{"inbound_ports", "80"}});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().find("is a directory with no files"), std::string::npos) << empty.error();

  // The layout kubelet makes: ..data -> ..2026_x/, key -> ..data/key.
  std::filesystem::create_directory(dir + "/..2026_x");
  std::ofstream(dir + "/..2026_x/netprof.json") << R"({"max_pods": 7})";
  std::filesystem::create_directory_symlink("..2026_x", dir + "/..data");
  std::filesystem::create_symlink("..data/netprof.json", dir + "/netprof.json");
  auto one = load_node_config(dir, {}, {{"inbound_ports", "80"}});
  ASSERT_TRUE(one.ok()) << one.error();
  EXPECT_EQ(one->max_pods, 7u);

  std::ofstream(dir + "/other.json") << "{}";
  auto two = load_node_config(dir, {}, {{"inbound_ports", "80"}});
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.error().find("2 files"), std::string::npos) << two.error();
  EXPECT_NE(two.error().find("other.json"), std::string::npos) << two.error();

  auto device = load_node_config("/dev/null", {}, {{"inbound_ports", "80"}});
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.error().find("not a regular file"), std::string::npos) << device.error();
}

// Every numeric field, present and future: not-a-number, infinite, negative and fractional
// counts are refused naming the field; and the field has a real range (some ordinary value is
// accepted), so a new field cannot be left with a [0, 0] range by mistake.
TEST(NodeConfig, EveryNumericFieldIsChecked) {
  for (const ConfigField& field : node_config_fields()) {
    if (field.kind != FieldKind::kCount && field.kind != FieldKind::kSeconds) continue;
    std::vector<std::string> bad = {"nan", "inf", "-inf", "1e400", "-1", "", "x"};
    if (field.kind == FieldKind::kCount) bad.push_back("1.5");
    for (const std::string& text : bad) {
      NodeConfig config;
      const Status status = apply_text(field, text, "flag", config);
      EXPECT_FALSE(status.ok()) << field.name << " accepted '" << text << "'";
      if (!status.ok()) {
        EXPECT_NE(status.error().find(field.name), std::string::npos) << status.error();
      }
    }
    bool some_accepted = false;
    for (const char* text : {"0", "1", "10", "256", "1000", "65536"}) {
      NodeConfig config;
      some_accepted |= apply_text(field, text, "flag", config).ok();
    }
    EXPECT_TRUE(some_accepted) << field.name << " accepts no ordinary value: is its range set?";
  }
}

TEST(NodeConfig, NamesAreDerivedFromTheField) {
  bool seen = false;
  for (const ConfigField& field : node_config_fields()) {
    if (std::string(field.name) != "inbound_ports") continue;
    seen = true;
    EXPECT_EQ(field_flag(field), "--inbound-ports");
    EXPECT_EQ(field_env(field), "NETPROF_INBOUND_PORTS");
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace netprof
