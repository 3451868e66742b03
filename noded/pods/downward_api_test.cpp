#include "pods/downward_api.h"

#include <gtest/gtest.h>

namespace podwarp::noded::pods {
namespace {

json::value parse(std::string_view s) { return *parse_json(s); }

TEST(DownwardApi, FieldRefTable) {
  auto pod = parse(R"j({"metadata":{"name":"p","namespace":"ns","uid":"u-1",
    "labels":{"app":"web","tier":"a\"b"},"annotations":{"k.io/x":"1"}},
    "spec":{"nodeName":"n1","serviceAccountName":"sa"}})j");
  DownwardContext ctx;
  ctx.host_ips = {"10.0.0.1", "fd00::1"};
  ctx.pod_ips = {"10.1.0.5"};
  struct Case {
    const char* path;
    const char* want;
  } cases[] = {
      {"metadata.name", "p"},
      {"metadata.namespace", "ns"},
      {"metadata.uid", "u-1"},
      {"metadata.labels['app']", "web"},
      {"metadata.labels['missing']", ""},
      {"metadata.annotations['k.io/x']", "1"},
      {"metadata.labels", "app=\"web\"\ntier=\"a\\\"b\""},
      {"metadata.annotations", "k.io/x=\"1\""},
      {"spec.nodeName", "n1"},
      {"spec.serviceAccountName", "sa"},
      {"status.hostIP", "10.0.0.1"},
      {"status.hostIPs", "10.0.0.1,fd00::1"},
      {"status.podIP", "10.1.0.5"},
      {"status.podIPs", "10.1.0.5"},
  };
  for (const auto& c : cases) {
    auto v = pod_field_value(pod, c.path, ctx);
    ASSERT_TRUE(v) << c.path << ": " << v.error();
    EXPECT_EQ(*v, c.want) << c.path;
  }
  auto bad = pod_field_value(pod, "spec.hostname", ctx);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), "unsupported fieldPath: spec.hostname");
}

TEST(DownwardApi, ResourceFieldRefWithDivisorAndAllocatableDefault) {
  auto c = parse(R"j({"name":"c","resources":{"limits":{"cpu":"250m","memory":"64Mi"},
    "requests":{"cpu":"100m","memory":"32Mi","ephemeral-storage":"1Gi"}}})j");
  DownwardContext ctx;
  ctx.node_allocatable = {{"cpu", "4"}, {"memory", "8Gi"}, {"ephemeral-storage", "100Gi"}};
  auto val = [&](std::string_view res, const char* divisor) {
    json::value d = divisor ? json::value(divisor) : json::value(nullptr);
    auto v = container_resource_value(c, res, divisor ? &d : nullptr, ctx);
    return v ? *v : "ERR:" + v.error();
  };
  EXPECT_EQ(val("limits.cpu", nullptr), "1");         // ceil(0.25)
  EXPECT_EQ(val("limits.cpu", "1m"), "250");
  EXPECT_EQ(val("requests.cpu", "1m"), "100");
  EXPECT_EQ(val("limits.memory", nullptr), "67108864");
  EXPECT_EQ(val("limits.memory", "1Mi"), "64");
  EXPECT_EQ(val("requests.memory", "1Mi"), "32");
  EXPECT_EQ(val("requests.ephemeral-storage", "1Gi"), "1");
  // No limit: node allocatable, as the kubelet's defaultPodLimitsForDownwardAPI.
  EXPECT_EQ(val("limits.ephemeral-storage", "1Gi"), "100");
  auto bare = parse(R"j({"name":"c"})j");
  auto v = container_resource_value(bare, "limits.cpu", nullptr, ctx);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, "4");
  v = container_resource_value(bare, "limits.memory", nullptr, ctx);
  EXPECT_EQ(*v, std::to_string(8ll << 30));
  v = container_resource_value(bare, "requests.cpu", nullptr, ctx);
  EXPECT_EQ(*v, "0");
  EXPECT_EQ(val("limits.gpu", nullptr), "ERR:unsupported container resource : limits.gpu");
}

}  // namespace
}  // namespace podwarp::noded::pods
