// Controller-reference lookups of loop/enqueue.h on hand-built objects.
#include "loop/enqueue.h"

#include <gtest/gtest.h>

namespace podwarp::loop {
namespace {

json::value pod_with_refs(json::array refs) {
  return json::object{
      {"metadata", json::object{{"name", "p"}, {"namespace", "ns1"}, {"ownerReferences", refs}}}};
}

json::object ref(std::string_view api_version, std::string_view kind, std::string_view name,
                 bool controller) {
  return json::object{{"apiVersion", api_version},
                      {"kind", kind},
                      {"name", name},
                      {"uid", "u-" + std::string(name)},
                      {"controller", controller}};
}

TEST(ControllerRef, FindsTheControllerOfTheKind) {
  json::value pod = pod_with_refs(
      json::array{ref("v1", "ConfigMap", "cm", false), ref("batch/v1", "Job", "j1", true)});
  const json::value* r = controller_ref_to(pod, "Job");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(get_string(*r, {"name"}), "j1");
  EXPECT_EQ(controller_key(pod, "Job"), "ns1/j1");
  EXPECT_EQ(controller_key(pod, "Job", "batch"), "ns1/j1");
}

TEST(ControllerRef, OtherKindGroupOrNoControllerIsNone) {
  json::value pod = pod_with_refs(json::array{ref("apps/v1", "ReplicaSet", "rs", true)});
  EXPECT_EQ(controller_ref_to(pod, "Job"), nullptr);
  EXPECT_EQ(controller_key(pod, "Job"), "");
  EXPECT_NE(controller_ref_to(pod, "ReplicaSet", "apps"), nullptr);
  EXPECT_EQ(controller_ref_to(pod, "ReplicaSet", "app"), nullptr);
  EXPECT_EQ(controller_ref_to(pod, "ReplicaSet", "batch"), nullptr);

  json::value core = pod_with_refs(json::array{ref("v1", "Job", "j", true)});
  EXPECT_EQ(controller_ref_to(core, "Job", "batch"), nullptr);  // apiVersion without a group
  EXPECT_NE(controller_ref_to(core, "Job"), nullptr);

  json::value owned = pod_with_refs(json::array{ref("batch/v1", "Job", "j", false)});
  EXPECT_EQ(controller_ref_to(owned, "Job"), nullptr);  // an owner, but not the controller
  EXPECT_EQ(controller_ref_to(json::object{}, "Job"), nullptr);
  EXPECT_EQ(controller_ref_to(json::value("not an object"), "Job"), nullptr);
}

}  // namespace
}  // namespace podwarp::loop
