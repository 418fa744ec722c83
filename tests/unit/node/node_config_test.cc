// `netprof node` settings: file < environment < flags, and every bad value rejected with a
// message that names the field and where it came from.
#include "node/node_config.h"

#include <gtest/gtest.h>
#include <set>
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
  TempFile file(R"({"inbound_ports": [80, 8080], "expire_after": 60, "route": ["/users/{id}"],
                    "max_routes": 500, "skmsg": "off", "admin": "127.0.0.1:9999"})");
  auto config = load_node_config(file.path(),
                                 {{"NETPROF_MAX_ROUTES", "700"}, {"NETPROF_EXPIRE_AFTER", "30"}},
                                 {{"expire_after", "5"}});
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->intercept.inbound_ports, (std::vector<uint16_t>{80, 8080}));
  EXPECT_EQ(config->profile.route_patterns, (std::vector<std::string>{"/users/{id}"}));
  EXPECT_EQ(config->intercept.skmsg, "off");
  EXPECT_EQ(config->profile.admin, "127.0.0.1:9999");
  EXPECT_EQ(config->profile.max_routes, 700u);       // environment over file
  EXPECT_DOUBLE_EQ(config->node.expire_after_s, 5);  // flag over environment over file
}

// The settings node mode used to drop: every output setting reaches the profile.
TEST(NodeConfig, OutputSettingsAreCarried) {
  TempFile file(R"({"inbound_ports": [80], "otlp_endpoint": "http://127.0.0.1:4318",
                    "push_url": "http://127.0.0.1:3000/ingest", "push_interval": 2,
                    "metrics_duration_buckets": [0.1, 1], "metrics_size_buckets": [0, 10],
                    "max_series": 50, "service_name": "shop", "stats_interval": 0.5})");
  auto config = load_node_config(file.path(), {}, std::map<std::string, std::string>{});
  ASSERT_TRUE(config.ok()) << config.error();
  const ProfileOptions& p = config->profile;
  EXPECT_EQ(p.otlp_endpoint, "http://127.0.0.1:4318");
  EXPECT_EQ(p.push_url, "http://127.0.0.1:3000/ingest");
  EXPECT_DOUBLE_EQ(p.push_interval_s, 2);
  EXPECT_EQ(p.duration_buckets_s, (std::vector<double>{0.1, 1}));
  EXPECT_EQ(p.size_buckets_bytes, (std::vector<double>{0, 10}));
  EXPECT_EQ(p.max_series, 50u);
  EXPECT_EQ(p.service_name, "shop");
  EXPECT_DOUBLE_EQ(p.stats_interval_s, 0.5);
}

// Old node spellings still work, each with a note saying the new name; the new name wins
// when both are given.
TEST(NodeConfig, OldNamesAreDeprecatedAliases) {
  TempFile file(R"({"inbound_ports": [80], "report_interval_s": 7, "admin_address": "off",
                    "routes": ["/a/{x}"], "collapse_ids": false, "skmsg": false,
                    "drain_timeout_s": 3, "drain_timeout": 4})");
  std::vector<std::string> notes;
  auto config = load_node_config(file.path(), {{"NETPROF_EXPIRE_AFTER_S", "9"}}, nullptr, notes);
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_DOUBLE_EQ(config->profile.report_interval_s, 7);
  EXPECT_EQ(config->profile.admin, "off");
  EXPECT_EQ(config->profile.route_patterns.size(), 1u);
  EXPECT_FALSE(config->profile.collapse_ids);
  EXPECT_EQ(config->intercept.skmsg, "off");
  EXPECT_DOUBLE_EQ(config->profile.drain_timeout_s, 4);
  EXPECT_DOUBLE_EQ(config->node.expire_after_s, 9);
  std::string all;
  for (const std::string& n : notes) all += n + "\n";
  for (const char* expected :
       {"field report_interval_s is deprecated: use report_interval",
        "field admin_address is deprecated: use admin", "field routes is deprecated: use route",
        "field collapse_ids is deprecated: use id_collapse", "skmsg: false is deprecated",
        "environment NETPROF_EXPIRE_AFTER_S is deprecated: use NETPROF_EXPIRE_AFTER"})
    EXPECT_NE(all.find(expected), std::string::npos) << expected << " not in\n" << all;
}

TEST(NodeConfig, TextValuesOfEveryKind) {
  auto config = load_node_config("",
                                 {{"NETPROF_INBOUND_PORTS", "80,443"},
                                  {"NETPROF_IPV6", "false"},
                                  {"NETPROF_ROUTE", "/a/{x},/b/**"},
                                  {"NETPROF_RESCAN_INTERVAL", "2.5"},
                                  {"NETPROF_CGROUP_ROOT", "/sys/fs/cgroup/kubepods.slice"},
                                  {"UNRELATED", "x"}},
                                 {{"outbound_ports", "5432"}});
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->intercept.inbound_ports, (std::vector<uint16_t>{80, 443}));
  EXPECT_EQ(config->intercept.outbound_ports, (std::vector<uint16_t>{5432}));
  EXPECT_FALSE(config->intercept.ipv6);
  EXPECT_TRUE(config->intercept.ipv4);
  EXPECT_EQ(config->profile.route_patterns.size(), 2u);
  EXPECT_DOUBLE_EQ(config->node.rescan_interval_s, 2.5);
  EXPECT_EQ(config->node.cgroup_root, "/sys/fs/cgroup/kubepods.slice");
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
                    BadCase{R"({"expire_after": -1})", "expire_after: -1 is out of range"},
                    BadCase{R"({"expire_after_s": -1})", "expire_after_s: -1 is out of range"},
                    BadCase{R"({"rescan_interval": "soon"})",
                            "rescan_interval: expected a number"},
                    BadCase{R"({"skmsg": "yes"})", "skmsg: \"yes\" is not one of"},
                    BadCase{R"({"ipv4": "yes"})", "ipv4: expected true or false"},
                    BadCase{R"({"route": ["/ok", "no-slash"]})", "route: item 1: 'no-slash'"},
                    BadCase{R"({"admin": "localhost:notaport"})", "admin:"},
                    BadCase{R"({"metrics_duration_buckets": [1, 0.5]})",
                            "metrics_duration_buckets: bucket bounds must be strictly ascending"},
                    BadCase{R"({"netns": "/proc/1/ns/net"})", "unknown field 'netns'"},
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
  EXPECT_NE(from_flag.error().find("--ipv4: 'maybe' is not a boolean"),
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
  EXPECT_NE(too_many.error().find("--inbound-ports: at most"), std::string::npos) << too_many.error();
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
  EXPECT_EQ(one->node.max_pods, 7u);

  std::ofstream(dir + "/other.json") << "{}";
  auto two = load_node_config(dir, {}, {{"inbound_ports", "80"}});
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.error().find("2 files"), std::string::npos) << two.error();
  EXPECT_NE(two.error().find("other.json"), std::string::npos) << two.error();

  auto device = load_node_config("/dev/null", {}, {{"inbound_ports", "80"}});
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.error().find("not a regular file"), std::string::npos) << device.error();
}

// Every numeric setting, present and future: not-a-number, infinite, negative and fractional
// counts are refused naming the setting; and the setting has a real range (some ordinary value
// is accepted), so a new one cannot be left with a [0, 0] range by mistake.
TEST(SettingTable, EveryNumericSettingIsChecked) {
  for (const Setting& s : setting_table()) {
    if (s.kind != SettingKind::kCount && s.kind != SettingKind::kNumber) continue;
    std::vector<std::string> bad = {"nan", "inf", "-inf", "1e400", "-1", "", "x"};
    if (s.kind == SettingKind::kCount) bad.push_back("1.5");
    for (const std::string& text : bad) {
      Settings settings;
      const Status status = apply_text(s, text, "environment " + env_name(s.name), settings);
      EXPECT_FALSE(status.ok()) << s.name << " accepted '" << text << "'";
      if (!status.ok()) {
        EXPECT_NE(status.error().find(s.name), std::string::npos) << status.error();
      }
    }
    bool some_accepted = false;
    for (const char* text : {"0", "1", "10", "256", "1000", "65536"}) {
      Settings settings;
      some_accepted |= apply_text(s, text, "flag", settings).ok();
    }
    EXPECT_TRUE(some_accepted) << s.name << " accepts no ordinary value: is its range set?";
  }
}

// The defaults in settings.h pass the table's own checks (a default out of its range would
// refuse to start with no flag given).
TEST(SettingTable, DefaultsAreValid) {
  for (const Mode mode : {kProxy, kAttach, kNode, kDemo})
    EXPECT_EQ(check_settings(Settings{}, mode), "") << mode;
}

TEST(SettingTable, NamesAreDerivedFromTheSetting) {
  EXPECT_EQ(flag_name("inbound_ports"), "--inbound-ports");
  EXPECT_EQ(env_name("inbound_ports"), "NETPROF_INBOUND_PORTS");
  bool deprecated = true;
  ASSERT_NE(find_setting("inbound_ports", &deprecated), nullptr);
  EXPECT_FALSE(deprecated);
  const Setting* old = find_setting("report_interval_s", &deprecated);
  ASSERT_NE(old, nullptr);
  EXPECT_TRUE(deprecated);
  EXPECT_EQ(old->name, "report_interval");
}

// One name per setting: no name or old name is used twice, and no old name is a current one.
TEST(SettingTable, EveryNameIsUnique) {
  std::set<std::string> seen;
  for (const Setting& s : setting_table()) {
    EXPECT_TRUE(seen.insert(s.name).second) << s.name;
    for (const std::string& old : s.aliases) EXPECT_TRUE(seen.insert(old).second) << old;
    EXPECT_NE(s.modes, 0u) << s.name;
    EXPECT_FALSE(s.help.empty()) << s.name;
  }
}

}  // namespace
}  // namespace netprof
