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

}  // namespace
}  // namespace podwarp::apiserver
