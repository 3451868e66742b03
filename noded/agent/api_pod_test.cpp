#include "agent/api_pod.h"

#include <gtest/gtest.h>

namespace podwarp::noded::agent {
namespace {

json::value api_pod() {
  return *parse_json(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"name":"web-1","namespace":"prod","uid":"1111-2222","resourceVersion":"7"},
    "spec":{"nodeName":"n1","restartPolicy":"Always","terminationGracePeriodSeconds":30,
            "containers":[{"name":"c","image":"busybox"}]},
    "status":{"phase":"Pending","nominatedNodeName":"n1","startTime":"2026-01-01T00:00:00Z",
      "conditions":[{"type":"PodScheduled","status":"True"},
                    {"type":"DisruptionTarget","status":"True","reason":"EvictionByEvictionAPI"}]}})");
}

TEST(ApiPod, RealIdentityNoStaticDefaults) {
  auto d = pod_def_from_api(api_pod());
  ASSERT_TRUE(d) << d.error().text();
  EXPECT_EQ(d->uid, "1111-2222");
  EXPECT_EQ(d->name, "web-1");
  EXPECT_EQ(d->ns, "prod");
  EXPECT_EQ(d->hostname, "web-1");
  EXPECT_EQ(d->pod, api_pod());  // untouched: no config.* annotations, no name suffix
  EXPECT_EQ(d->containers.size(), 1u);
}

TEST(ApiPod, InvalidSpecIsAnError) {
  auto p = api_pod();
  p.as_object()["spec"].as_object()["containers"] = json::array();
  EXPECT_FALSE(pod_def_from_api(p));
}

TEST(ApiPod, DeletionGraceAndTerminal) {
  auto p = api_pod();
  EXPECT_FALSE(deletion_grace(p));
  auto& meta = p.as_object()["metadata"].as_object();
  meta["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  meta["deletionGracePeriodSeconds"] = 5;
  EXPECT_EQ(deletion_grace(p), 5);
  EXPECT_FALSE(is_terminal_phase(p));
  p.as_object()["status"].as_object()["phase"] = "Succeeded";
  EXPECT_TRUE(is_terminal_phase(p));
}

TEST(ApiPod, ComposeKeepsForeignConditionsAndSaysNoNetwork) {
  json::object ours = parse_json(R"({"phase":"Running","hostIP":"10.0.0.5",
      "startTime":"2026-01-02T00:00:00Z",
      "conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"True"}],
      "containerStatuses":[]})")
                          ->as_object();
  auto cur = api_pod();
  json::value st = compose_api_status(ours, find_path(cur, {"status"}), false);
  EXPECT_EQ(get_string(st, {"nominatedNodeName"}), "n1");
  std::vector<std::string> types;
  for (const auto& c : find_path(st, {"conditions"})->as_array())
    types.emplace_back(get_string(c, {"type"}));
  EXPECT_EQ(types, (std::vector<std::string>{"PodScheduled", "Ready", "podwarp.io/PodNetwork",
                                             "DisruptionTarget"}));
  EXPECT_FALSE(find_path(st, {"podIP"}));
  // hostNetwork: podIP = hostIP, no PodNetwork condition.
  json::value hn = compose_api_status(ours, nullptr, true);
  EXPECT_EQ(get_string(hn, {"podIP"}), "10.0.0.5");
  EXPECT_EQ(find_path(hn, {"conditions"})->as_array().size(), 2u);
}

TEST(ApiPod, StatusPatchTestsUid) {
  json::object st{{"phase", "Running"}};
  auto p = parse_json(status_patch("u-1", st));
  ASSERT_TRUE(p);
  EXPECT_EQ(get_string(p->as_array()[0], {"op"}), "test");
  EXPECT_EQ(get_string(p->as_array()[0], {"value"}), "u-1");
  EXPECT_EQ(get_string(p->as_array()[1], {"path"}), "/status");
}

}  // namespace
}  // namespace podwarp::noded::agent
