// ServiceSync against the real ServiceMap on FakeLbMaps (no root): events -> per-service map
// updates, nothing before the first full sync, restart (recover + prune), failure retry.
#include "lb/service_sync.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace podwarp::noded::lb {
namespace {

json::value parse(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v) << v.error();
  return v ? *v : json::value();
}

IpAddr ip(std::string_view s) { return *IpAddr::parse(s); }

json::value service(std::string_view ns, std::string_view name, std::string_view cluster_ip,
                    int port = 80) {
  return parse(fmt::format(R"({{"metadata": {{"namespace": "{}", "name": "{}"}},
    "spec": {{"type": "ClusterIP", "clusterIP": "{}", "clusterIPs": ["{}"],
             "ports": [{{"name": "http", "port": {}, "targetPort": 8080, "protocol": "TCP"}}]}}}})",
                           ns, name, cluster_ip, cluster_ip, port));
}

json::value slice(std::string_view ns, std::string_view name, std::string_view svc,
                  std::vector<std::string> addrs, bool ready = true) {
  std::string eps;
  for (const auto& a : addrs) {
    if (!eps.empty()) eps += ",";
    eps += fmt::format(R"({{"addresses": ["{}"], "conditions": {{"ready": {}}}, "nodeName": "n1"}})",
                       a, ready ? "true" : "false");
  }
  return parse(fmt::format(R"({{"metadata": {{"namespace": "{}", "name": "{}",
      "labels": {{"kubernetes.io/service-name": "{}"}}}},
    "addressType": "IPv4", "ports": [{{"name": "http", "port": 8080, "protocol": "TCP"}}],
    "endpoints": [{}]}})",
                           ns, name, svc, eps));
}

Frontend cip(std::string_view a, std::uint16_t port = 80) {
  return Frontend{FrontendKind::ClusterIP, ip(a), port, Protocol::TCP};
}

// Backend addresses a frontend sends to, sorted; {"<none>"} when the frontend is absent.
std::vector<std::string> backends(const ServiceMap& m, const Frontend& f) {
  auto v = m.lookup(f);
  if (!v) return {"<none>"};
  std::vector<std::string> out;
  for (const auto& b : v->slots) out.push_back(fmt::format("{}:{}", b.addr.to_string(), b.port));
  std::sort(out.begin(), out.end());
  return out;
}

using V = std::vector<std::string>;

TEST(ServiceSync, NothingAppliedBeforeSyncThenEverythingOnce) {
  FakeLbMaps maps;
  ServiceMap m(maps);
  ServiceSync s(m, "n1");
  s.service_changed(service("a", "web", "10.96.0.10"));
  s.slice_changed(nullptr, slice("a", "web-1", "web", {"10.244.0.5"}));
  EXPECT_EQ(maps.ops(), 0);
  EXPECT_EQ(backends(m, cip("10.96.0.10")), V{"<none>"});
  s.mark_synced();
  EXPECT_EQ(backends(m, cip("10.96.0.10")), V{"10.244.0.5:8080"});
  EXPECT_EQ(s.stats().applies, 1u);
  s.mark_synced();  // idempotent
  EXPECT_EQ(s.stats().applies, 1u);
}

TEST(ServiceSync, EachEventTouchesOnlyItsService) {
  FakeLbMaps maps;
  ServiceMap m(maps);
  ServiceSync s(m, "n1");
  for (int i = 0; i < 200; ++i) {
    s.service_changed(service("a", fmt::format("s{}", i), fmt::format("10.96.1.{}", i)));
    s.slice_changed(nullptr, slice("a", fmt::format("s{}-x", i), fmt::format("s{}", i),
                                   {fmt::format("10.244.1.{}", i)}));
  }
  s.mark_synced();
  // One more endpoint of one service: one backend added = 4 map updates, whatever the size.
  maps.reset_counts();
  s.slice_changed(nullptr, slice("a", "s7-y", "s7", {"10.244.2.7"}));
  EXPECT_EQ(backends(m, cip("10.96.1.7")), (V{"10.244.1.7:8080", "10.244.2.7:8080"}));
  EXPECT_EQ(maps.ops(), 4);
  // A slice update that changes nothing the datapath uses: no map operation.
  maps.reset_counts();
  auto same = slice("a", "s7-y", "s7", {"10.244.2.7"});
  same.as_object()["metadata"].as_object()["resourceVersion"] = "99";
  s.slice_changed(nullptr, same);
  EXPECT_EQ(maps.ops(), 0);
  EXPECT_GE(s.stats().skipped, 1u);
  // The endpoint turns unready, then its slice goes: backends follow.
  s.slice_changed(nullptr, slice("a", "s7-y", "s7", {"10.244.2.7"}, false));
  EXPECT_EQ(backends(m, cip("10.96.1.7")), V{"10.244.1.7:8080"});
  s.slice_deleted(slice("a", "s7-x", "s7", {}));
  EXPECT_EQ(backends(m, cip("10.96.1.7")), V{});  // frontend kept: refuses connections
  EXPECT_EQ(backends(m, cip("10.96.1.8")), V{"10.244.1.8:8080"});
}

TEST(ServiceSync, ServiceUpdateDeleteAndHeadless) {
  FakeLbMaps maps;
  ServiceMap m(maps);
  ServiceSync s(m, "n1");
  s.mark_synced();
  s.slice_changed(nullptr, slice("a", "web-1", "web", {"10.244.0.5"}));  // before its service
  EXPECT_EQ(m.set_count(), 0u);
  s.service_changed(service("a", "web", "10.96.0.10"));
  EXPECT_EQ(backends(m, cip("10.96.0.10")), V{"10.244.0.5:8080"});
  // Port change: the old frontend goes, the new one has the same backends.
  s.service_changed(service("a", "web", "10.96.0.10", 81));
  EXPECT_EQ(backends(m, cip("10.96.0.10")), V{"<none>"});
  EXPECT_EQ(backends(m, cip("10.96.0.10", 81)), V{"10.244.0.5:8080"});
  // Headless: not load-balanced.
  s.service_changed(service("a", "web", "None", 81));
  EXPECT_EQ(m.set_count(), 0u);
  s.service_changed(service("a", "web", "10.96.0.10", 81));
  EXPECT_EQ(m.set_count(), 1u);
  // Same name in another namespace is another service.
  s.slice_changed(nullptr, slice("b", "web-1", "web", {"10.244.9.9"}));
  EXPECT_EQ(backends(m, cip("10.96.0.10", 81)), V{"10.244.0.5:8080"});
  s.service_deleted(service("a", "web", "10.96.0.10", 81));
  EXPECT_EQ(m.set_count(), 0u);
  EXPECT_EQ(m.backend_count(), 0u);
}

TEST(ServiceSync, SliceMovingToAnotherService) {
  FakeLbMaps maps;
  ServiceMap m(maps);
  ServiceSync s(m, "n1");
  s.service_changed(service("a", "one", "10.96.0.1"));
  s.service_changed(service("a", "two", "10.96.0.2"));
  auto old_slice = slice("a", "x", "one", {"10.244.0.5"});
  s.slice_changed(nullptr, old_slice);
  s.mark_synced();
  EXPECT_EQ(backends(m, cip("10.96.0.1")), V{"10.244.0.5:8080"});
  s.slice_changed(&old_slice, slice("a", "x", "two", {"10.244.0.5"}));
  EXPECT_EQ(backends(m, cip("10.96.0.1")), V{});
  EXPECT_EQ(backends(m, cip("10.96.0.2")), V{"10.244.0.5:8080"});
}

TEST(ServiceSync, RestartRecoversWritesOnlyDifferencesAndPrunesGoneServices) {
  FakeLbMaps maps;
  {
    ServiceMap m(maps);
    ServiceSync s(m, "n1");
    s.service_changed(service("a", "keep", "10.96.0.1"));
    s.slice_changed(nullptr, slice("a", "keep-1", "keep", {"10.244.0.1", "10.244.0.2"}));
    s.service_changed(service("a", "gone", "10.96.0.2"));
    s.slice_changed(nullptr, slice("a", "gone-1", "gone", {"10.244.0.3"}));
    s.mark_synced();
  }
  // noded restarts: the maps (pins) stay; "gone" was deleted meanwhile.
  ServiceMap m(maps);
  ASSERT_TRUE(m.recover());
  ServiceSync s(m, "n1");
  maps.reset_counts();
  s.service_changed(service("a", "keep", "10.96.0.1"));
  EXPECT_EQ(maps.ops(), 0);  // nothing before the full list...
  s.slice_changed(nullptr, slice("a", "keep-1", "keep", {"10.244.0.1", "10.244.0.2"}));
  EXPECT_EQ(backends(m, cip("10.96.0.2")), V{"10.244.0.3:8080"});  // ...old state serves
  s.mark_synced();
  EXPECT_EQ(backends(m, cip("10.96.0.1")), (V{"10.244.0.1:8080", "10.244.0.2:8080"}));
  EXPECT_EQ(backends(m, cip("10.96.0.2")), V{"<none>"});
  EXPECT_EQ(m.backend_count(), 2u);
  // Only the pruned service's entries were deleted; "keep" was not rewritten.
  EXPECT_EQ(maps.updates, 0);
  EXPECT_GT(maps.deletes, 0);
}

TEST(ServiceSync, FailedApplyIsRetried) {
  FakeLbMaps maps;
  ServiceMap m(maps);
  ServiceSync s(m, "n1");
  s.mark_synced();
  s.service_changed(service("a", "web", "10.96.0.10"));
  maps.fail_after = 1;  // the next map update fails
  s.slice_changed(nullptr, slice("a", "web-1", "web", {"10.244.0.5", "10.244.0.6"}));
  EXPECT_EQ(s.failed().size(), 1u);
  EXPECT_EQ(s.stats().failures, 1u);
  maps.fail_after = 0;
  EXPECT_EQ(s.retry_failed(), 0u);
  EXPECT_EQ(backends(m, cip("10.96.0.10")), (V{"10.244.0.5:8080", "10.244.0.6:8080"}));
  // Malformed objects are ignored.
  s.service_changed(parse("{}"));
  s.slice_changed(nullptr, parse(R"({"metadata": {"name": "x"}})"));
  s.slice_deleted(parse("[]"));
  EXPECT_EQ(m.set_count(), 1u);
}

}  // namespace
}  // namespace podwarp::noded::lb
