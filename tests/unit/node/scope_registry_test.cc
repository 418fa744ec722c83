// The scope -> pod registry behind per-pod stats: lookups, gone pods and their expiry.
#include "stats/scope_registry.h"

#include <gtest/gtest.h>

namespace netprof {
namespace {

TEST(ScopeRegistry, GonePodsExpireAfterTheirTtl) {
  ScopeRegistry registry;
  auto pod = [](const char* name, const char* uid) {
    ScopeInfo info;
    info.pod_name = name;
    info.pod_uid = uid;
    info.direction = "inbound";
    return info;
  };
  registry.set(7, pod("web-1", "u1"));
  registry.set(8, pod("web-2", "u2"));
  EXPECT_EQ(registry.find(7)->pod_name, "web-1");
  EXPECT_FALSE(registry.find(9).has_value());

  registry.mark_gone(7, 1000);
  registry.mark_gone(7, 5000);  // the first time counts
  EXPECT_EQ(registry.find(7)->gone_at_ms, 1000);
  EXPECT_TRUE(registry.expired(1999, 1000).empty());
  EXPECT_EQ(registry.expired(2000, 1000), std::vector<uint32_t>{7});  // 8 still runs
  registry.erase(7);
  EXPECT_FALSE(registry.find(7).has_value());
  EXPECT_EQ(registry.snapshot().size(), 1u);
}

}  // namespace
}  // namespace netprof
