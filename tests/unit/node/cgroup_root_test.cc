// Finding the cgroup2 hierarchy from a node's /sys/fs/cgroup: the directory itself when it is
// cgroup2, its `unified` mount on hybrid hosts, a clear error otherwise. Uses this machine's
// real mounts (found in /proc/self/mountinfo), whichever layout it has.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "base/cgroup_v2.h"

namespace netprof {
namespace {

TEST(Cgroup2HierarchyAt, TheMountItselfAndItsHybridParent) {
  auto mount = cgroup2_mount_point();
  if (!mount) GTEST_SKIP() << "no cgroup2 mounted here: " << mount.error();
  auto at = cgroup2_hierarchy_at(*mount);
  ASSERT_TRUE(at) << at.error();
  EXPECT_EQ(*at, std::filesystem::canonical(*mount).string());
  const std::filesystem::path path(*mount);
  if (path.filename() != "unified") return;  // not a hybrid host: nothing more to check
  auto parent = cgroup2_hierarchy_at(path.parent_path().string());  // /sys/fs/cgroup (tmpfs)
  ASSERT_TRUE(parent) << parent.error();
  EXPECT_EQ(*parent, *at);
}

TEST(CpuQuota, CpuMaxLines) {
  EXPECT_EQ(cpus_of_cpu_max("max 100000\n"), 0);
  EXPECT_DOUBLE_EQ(cpus_of_cpu_max("150000 100000\n"), 1.5);
  EXPECT_DOUBLE_EQ(cpus_of_cpu_max("50000 100000"), 0.5);
  EXPECT_EQ(cpus_of_cpu_max(""), 0);            // no cpu controller here
  EXPECT_EQ(cpus_of_cpu_max("abc 100000"), 0);  // not a cpu.max line
  EXPECT_EQ(cpus_of_cpu_max("100000 0"), 0);
}

TEST(CpuQuota, UsableCpusAreAtLeastOneAndAtMostTheAffinityMask) {
  const size_t cpus = usable_cpu_count();
  EXPECT_GE(cpus, 1u);
  EXPECT_LE(cpus, static_cast<size_t>(sysconf(_SC_NPROCESSORS_CONF)));
}

TEST(Cgroup2HierarchyAt, NotACgroupDirectory) {
  char name[] = "/tmp/netprof-cgroot-XXXXXX";
  ASSERT_NE(mkdtemp(name), nullptr);
  auto at = cgroup2_hierarchy_at(name);
  ASSERT_FALSE(at);
  EXPECT_NE(at.error().find("is not a cgroup v2 hierarchy"), std::string::npos) << at.error();
  EXPECT_NE(at.error().find("unified"), std::string::npos) << at.error();
  rmdir(name);
  auto missing = cgroup2_hierarchy_at(std::string(name) + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("No such file or directory"), std::string::npos)
      << missing.error();
}

}  // namespace
}  // namespace netprof
