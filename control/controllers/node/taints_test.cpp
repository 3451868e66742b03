#include "node/taints.h"

#include <gtest/gtest.h>

namespace podwarp::controllers::taints {
namespace {

json::value J(const char* s) { return json::parse(s); }

TEST(Taints, TolerationMatching) {
  auto taint = J(R"({"key":"node.kubernetes.io/unreachable","effect":"NoExecute"})");
  EXPECT_TRUE(tolerates(J(R"({"key":"node.kubernetes.io/unreachable","operator":"Exists"})"), taint));
  EXPECT_TRUE(tolerates(J(R"({"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute"})"), taint));
  EXPECT_FALSE(tolerates(J(R"({"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoSchedule"})"), taint));
  EXPECT_TRUE(tolerates(J(R"({"operator":"Exists"})"), taint));  // tolerates everything
  EXPECT_FALSE(tolerates(J(R"({"key":"other","operator":"Exists"})"), taint));
  // Equal (also the default operator) compares values.
  auto valued = J(R"({"key":"dedicated","value":"gpu","effect":"NoExecute"})");
  EXPECT_TRUE(tolerates(J(R"({"key":"dedicated","value":"gpu"})"), valued));
  EXPECT_TRUE(tolerates(J(R"({"key":"dedicated","operator":"Equal","value":"gpu"})"), valued));
  EXPECT_FALSE(tolerates(J(R"({"key":"dedicated","operator":"Equal","value":"cpu"})"), valued));
  EXPECT_FALSE(tolerates(J(R"({"operator":"Equal","value":"gpu"})"), valued));  // empty key needs Exists
  EXPECT_TRUE(tolerates(J(R"({"key":"dedicated","operator":"Exists"})"), valued));
}

TEST(Taints, EvictionTimes) {
  auto node_taints = J(R"([{"key":"node.kubernetes.io/unreachable","effect":"NoExecute"},
                            {"key":"node.kubernetes.io/unreachable","effect":"NoSchedule"}])");
  // No tolerations: at once.
  EXPECT_EQ(eviction_for(nullptr, &node_taints).kind, Eviction::kNow);
  // Tolerated for 300 s (the DefaultTolerationSeconds toleration).
  auto tols = J(R"([{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}])");
  auto e = eviction_for(&tols, &node_taints);
  EXPECT_EQ(e.kind, Eviction::kAfter);
  EXPECT_EQ(e.after.count(), 300);
  // The smallest of the matching tolerations wins; negative counts as 0.
  tols = J(R"([{"key":"node.kubernetes.io/unreachable","operator":"Exists","tolerationSeconds":300},
               {"operator":"Exists","effect":"NoExecute","tolerationSeconds":2}])");
  e = eviction_for(&tols, &node_taints);
  EXPECT_EQ(e.kind, Eviction::kAfter);
  EXPECT_EQ(e.after.count(), 2);
  tols = J(R"([{"operator":"Exists","tolerationSeconds":-5}])");
  EXPECT_EQ(eviction_for(&tols, &node_taints).after.count(), 0);
  // Forever.
  tols = J(R"([{"key":"node.kubernetes.io/unreachable","operator":"Exists"}])");
  EXPECT_EQ(eviction_for(&tols, &node_taints).kind, Eviction::kNone);
  // One of two NoExecute taints not tolerated: at once.
  auto two = J(R"([{"key":"node.kubernetes.io/unreachable","effect":"NoExecute"},
                   {"key":"dedicated","value":"x","effect":"NoExecute"}])");
  EXPECT_EQ(eviction_for(&tols, &two).kind, Eviction::kNow);
  // NoSchedule taints alone never evict.
  auto ns = J(R"([{"key":"node.kubernetes.io/unreachable","effect":"NoSchedule"}])");
  EXPECT_EQ(eviction_for(nullptr, &ns).kind, Eviction::kNone);
  EXPECT_EQ(eviction_for(nullptr, nullptr).kind, Eviction::kNone);
}

TEST(Taints, WantedFromConditions) {
  auto keys = [](const char* node) {
    std::string out;
    for (auto& w : wanted_taints(json::parse(node))) {
      out += std::string(w.key) + ":" + std::string(w.effect) + " ";
    }
    return out;
  };
  EXPECT_EQ(keys(R"({"status":{"conditions":[{"type":"Ready","status":"True"}]}})"), "");
  EXPECT_EQ(keys(R"({"metadata":{"name":"new"}})"), "");
  EXPECT_EQ(keys(R"({"status":{"conditions":[{"type":"Ready","status":"False"}]}})"),
            "node.kubernetes.io/not-ready:NoExecute node.kubernetes.io/not-ready:NoSchedule ");
  EXPECT_EQ(keys(R"({"status":{"conditions":[{"type":"Ready","status":"Unknown"}]}})"),
            "node.kubernetes.io/unreachable:NoExecute node.kubernetes.io/unreachable:NoSchedule ");
  EXPECT_EQ(keys(R"({"spec":{"unschedulable":true},"status":{"conditions":[
                      {"type":"Ready","status":"True"},{"type":"DiskPressure","status":"True"},
                      {"type":"MemoryPressure","status":"False"}]}})"),
            "node.kubernetes.io/disk-pressure:NoSchedule node.kubernetes.io/unschedulable:NoSchedule ");
  EXPECT_TRUE(managed(kUnreachable, "NoExecute"));
  EXPECT_FALSE(managed("dedicated", "NoExecute"));
  EXPECT_FALSE(managed(kMemoryPressure, "NoExecute"));
}

}  // namespace
}  // namespace podwarp::controllers::taints
