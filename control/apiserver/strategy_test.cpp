#include "apiserver/strategy.h"

#include <gtest/gtest.h>

namespace podwarp::apiserver {
namespace {

const api::Resource& res(std::string_view group, std::string_view plural) {
  return *api::find_resource(group, "v1", plural);
}

TEST(Strategy, NewReplicaSetsAndDaemonSetsCarryTheirNonOptionalStatusZeros) {
  auto rs = parse_json(R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"a"},
                           "spec":{"replicas":2},"status":{"replicas":5}})");
  ASSERT_TRUE(rs);
  prepare_for_create(res("apps", "replicasets"), *rs);
  EXPECT_EQ(rs->at("status").as_object().size(), 1u);  // only replicas, reset to 0
  EXPECT_EQ(get_int(*rs, {"status", "replicas"}, -1), 0);

  auto ds = parse_json(R"({"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"d"}})");
  prepare_for_create(res("apps", "daemonsets"), *ds);
  for (const char* f : {"currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                        "numberReady"})
    EXPECT_EQ(get_int(*ds, {"status", f}, -1), 0) << f;

  auto dep = parse_json(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}})");
  prepare_for_create(res("apps", "deployments"), *dep);
  EXPECT_TRUE(dep->at("status").as_object().empty());  // all omitempty upstream
}

TEST(Strategy, StatusUpdatesKeepTheZerosAndTheWrittenValues) {
  auto old = parse_json(R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"s",
                            "resourceVersion":"3"},"spec":{"replicas":1},"status":{"replicas":0,
                            "availableReplicas":0}})");
  auto next = parse_json(R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"s"},
                             "status":{"readyReplicas":1,"replicas":1}})");
  ASSERT_TRUE(old && next);
  prepare_for_status_update(res("apps", "statefulsets"), *next, *old);
  EXPECT_EQ(get_int(*next, {"status", "replicas"}, -1), 1);
  EXPECT_EQ(get_int(*next, {"status", "readyReplicas"}, -1), 1);
  EXPECT_EQ(get_int(*next, {"status", "availableReplicas"}, -1), 0);
  EXPECT_EQ(get_int(*next, {"spec", "replicas"}, -1), 1);
}

TEST(Strategy, StatusUpdatesTakeTheRequestsMetadataAsUpstream) {
  auto old = parse_json(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d",
      "uid":"u1","generation":3,"creationTimestamp":"2026-01-01T00:00:00Z","resourceVersion":"7",
      "labels":{"app":"d"},"annotations":{"a":"1"}},"spec":{"replicas":2},"status":{}})");
  auto next = parse_json(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d",
      "uid":"u1","generation":9,"resourceVersion":"7","labels":{"app":"changed"},
      "annotations":{"a":"1","deployment.kubernetes.io/revision":"1"},
      "managedFields":[{"manager":"x"}]},"spec":{"replicas":5},"status":{"replicas":2}})");
  ASSERT_TRUE(old && next);
  prepare_for_status_update(res("apps", "deployments"), *next, *old);
  // The annotation is written; spec, generation and the other server-owned fields are not.
  EXPECT_EQ(get_string(*next, {"metadata", "annotations", "deployment.kubernetes.io/revision"}),
            "1");
  EXPECT_EQ(get_int(*next, {"spec", "replicas"}), 2);
  EXPECT_EQ(get_int(*next, {"metadata", "generation"}), 3);
  EXPECT_EQ(get_string(*next, {"metadata", "creationTimestamp"}), "2026-01-01T00:00:00Z");
  EXPECT_EQ(get_string(*next, {"metadata", "resourceVersion"}), "7");
  EXPECT_EQ(find_path(*next, {"metadata", "managedFields"}), nullptr);
  EXPECT_EQ(get_int(*next, {"status", "replicas"}), 2);
  // A Deployment's labels cannot change through its status (upstream's status strategy).
  EXPECT_EQ(get_string(*next, {"metadata", "labels", "app"}), "d");

  // A Pod's labels can, its ownerReferences cannot.
  auto old_pod = parse_json(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p",
      "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"r1"}]},
      "spec":{"containers":[]}})");
  auto next_pod = parse_json(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p",
      "labels":{"x":"y"}},"status":{"phase":"Running"}})");
  ASSERT_TRUE(old_pod && next_pod);
  prepare_for_status_update(res("", "pods"), *next_pod, *old_pod);
  EXPECT_EQ(get_string(*next_pod, {"metadata", "labels", "x"}), "y");
  const json::value* owners = find_path(*next_pod, {"metadata", "ownerReferences"});
  ASSERT_NE(owners, nullptr);
  EXPECT_EQ(*owners, old_pod->at("metadata").at("ownerReferences"));
  EXPECT_EQ(get_string(*next_pod, {"status", "phase"}), "Running");
}

}  // namespace
}  // namespace podwarp::apiserver
