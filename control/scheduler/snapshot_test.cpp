#include "scheduler/snapshot.h"

#include <gtest/gtest.h>

#include "scheduler/test_util.h"

namespace podwarp::scheduler {
namespace {

using testing::node_json;
using testing::pod_json;

TEST(SnapshotTest, AccountsPodsIncrementally) {
  Snapshot s;
  s.upsert_node(compile_node(node_json("n1", "4", "8Gi", "10"), s.interner()));
  auto p = compile_pod(pod_json("a", "250m", "1Gi", "{}", R"({"app":"web"})"), s.interner());
  s.add_pod(p, "n1");
  const NodeInfo* n = s.find_node("n1");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->spec.allocatable.milli_cpu, 4000);
  EXPECT_EQ(n->spec.allowed_pods, 10);
  EXPECT_EQ(n->requested.milli_cpu, 250);
  EXPECT_EQ(n->requested.memory, 1LL << 30);
  EXPECT_EQ(n->pods.size(), 1u);
  ASSERT_EQ(s.pod_groups().size(), 1u);
  EXPECT_EQ(s.pod_groups()[0].count, 1u);
  // Adding the same uid again replaces it.
  s.add_pod(p, "n1");
  EXPECT_EQ(n->requested.milli_cpu, 250);
  EXPECT_TRUE(s.remove_pod(p->uid));
  EXPECT_FALSE(s.remove_pod(p->uid));
  EXPECT_EQ(n->requested.milli_cpu, 0);
  EXPECT_EQ(n->pods.size(), 0u);
  EXPECT_EQ(s.pod_groups()[0].count, 0u);
  EXPECT_TRUE(s.pod_groups()[0].nodes.empty());
  // The empty group's slot is reused by the next label set.
  s.add_pod(compile_pod(pod_json("b", "1m", "1Mi", "{}", R"({"app":"db"})"), s.interner()), "n1");
  ASSERT_EQ(s.pod_groups().size(), 1u);
  EXPECT_EQ(s.pod_groups()[0].count, 1u);
}

TEST(SnapshotTest, PodsOnUnknownNodesWaitOnAPlaceholder) {
  Snapshot s;
  s.add_pod(compile_pod(pod_json("a", "1"), s.interner()), "later");
  EXPECT_TRUE(s.live_nodes().empty());
  ASSERT_NE(s.find_node("later"), nullptr);
  s.upsert_node(compile_node(node_json("later"), s.interner()));
  ASSERT_EQ(s.live_nodes().size(), 1u);
  EXPECT_EQ(s.find_node("later")->requested.milli_cpu, 1000);
  // Removing the node keeps the placeholder while pods remain; the last pod removes it.
  s.remove_node("later");
  EXPECT_TRUE(s.live_nodes().empty());
  ASSERT_NE(s.find_node("later"), nullptr);
  s.remove_pod("uid-default-a");
  EXPECT_EQ(s.find_node("later"), nullptr);
}

TEST(SnapshotTest, FinishedPodsHoldNothing) {
  Snapshot s;
  s.upsert_node(compile_node(node_json("n1"), s.interner()));
  json::value p = pod_json("done", "1");
  p.as_object()["status"] = json::object{{"phase", "Succeeded"}};
  s.add_pod(compile_pod(p, s.interner()), "n1");
  EXPECT_EQ(s.find_node("n1")->requested.milli_cpu, 0);
  EXPECT_EQ(s.pod_count(), 0u);
}

TEST(SnapshotTest, TermGroupsAreSharedByIdenticalTerms) {
  Snapshot s;
  s.upsert_node(compile_node(node_json("n1"), s.interner()));
  s.upsert_node(compile_node(node_json("n2"), s.interner()));
  const std::string anti =
      R"({"affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app":"web"}},"topologyKey":"kubernetes.io/hostname"}]}}})";
  s.add_pod(compile_pod(pod_json("a", "1m", "1Mi", anti, R"({"app":"web"})"), s.interner()), "n1");
  s.add_pod(compile_pod(pod_json("b", "1m", "1Mi", anti, R"({"app":"web"})"), s.interner()), "n2");
  ASSERT_EQ(s.term_groups().size(), 1u);
  EXPECT_EQ(s.term_groups()[0].count, 2u);
  EXPECT_EQ(s.term_groups()[0].nodes.size(), 2u);
  EXPECT_EQ(s.pods_with_affinity(), 2u);
  EXPECT_EQ(s.domains(s.interner().intern("kubernetes.io/hostname")).size(), 2u);
}

}  // namespace
}  // namespace podwarp::scheduler
