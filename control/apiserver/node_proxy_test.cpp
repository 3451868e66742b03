// The pure parts of the pods/log|exec|attach|portforward proxy: container choice, node
// address, node API paths.
#include "apiserver/node_proxy.h"

#include <gtest/gtest.h>

namespace podwarp::apiserver {
namespace {

json::value pod(std::string_view spec) {
  auto s = parse_json(spec);
  EXPECT_TRUE(s) << spec;
  return json::object{{"metadata", json::object{{"name", "p"}}}, {"spec", *s}};
}

TEST(StreamContainer, TheOnlyContainerWhenNoneIsNamed) {
  auto c = stream_container(pod(R"({"containers":[{"name":"app"}]})"), "");
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, "app");
  // Init containers do not count for the default.
  c = stream_container(pod(R"({"initContainers":[{"name":"i"}],"containers":[{"name":"app"}]})"), "");
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, "app");
}

TEST(StreamContainer, SeveralContainersNeedAName) {
  auto c = stream_container(
      pod(R"({"initContainers":[{"name":"i"}],"containers":[{"name":"a"},{"name":"b"}]})"), "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, 400);
  EXPECT_EQ(c.error().reason, "BadRequest");
  EXPECT_EQ(c.error().message, "a container name must be specified for pod p, choose one of: [i a b]");
}

TEST(StreamContainer, UnknownNamesAreRejectedAndEveryKindIsAccepted) {
  json::value p = pod(
      R"({"initContainers":[{"name":"i"}],"containers":[{"name":"a"}],"ephemeralContainers":[{"name":"dbg"}]})");
  auto c = stream_container(p, "zz");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, 400);
  EXPECT_EQ(c.error().message, "container zz is not valid for pod p");
  for (std::string_view name : {"i", "a", "dbg"}) {
    auto ok = stream_container(p, name);
    ASSERT_TRUE(ok) << name;
    EXPECT_EQ(*ok, name);
  }
  auto none = stream_container(pod(R"({})"), "");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "pod p does not have a container");
}

TEST(NodeEndpoint, InternalIpThenHostnameAndTheKubeletPort) {
  auto n = parse_json(R"({"metadata":{"name":"n1"},"status":{
      "addresses":[{"type":"Hostname","address":"n1"},{"type":"InternalIP","address":"10.0.0.5"}],
      "daemonEndpoints":{"kubeletEndpoint":{"Port":41000}}}})");
  auto ep = node_endpoint(*n);
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "10.0.0.5");
  EXPECT_EQ(ep->port, 41000);
  n = parse_json(R"({"metadata":{"name":"n1"},"status":{"addresses":[{"type":"Hostname","address":"n1"}]}})");
  ep = node_endpoint(*n);
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "n1");
  EXPECT_EQ(ep->port, 10250);
  n = parse_json(R"({"metadata":{"name":"n1"},"status":{}})");
  EXPECT_FALSE(node_endpoint(*n));
}

TEST(NodeApiPath, KubeletPaths) {
  EXPECT_EQ(node_api_path("log", "ns", "p", "c"), "/containerLogs/ns/p/c");
  EXPECT_EQ(node_api_path("exec", "ns", "p", "c"), "/exec/ns/p/c");
  EXPECT_EQ(node_api_path("attach", "ns", "p", "c"), "/attach/ns/p/c");
  EXPECT_EQ(node_api_path("portforward", "ns", "p", ""), "/portforward/ns/p");
  EXPECT_TRUE(is_node_proxy_subresource("exec"));
  EXPECT_FALSE(is_node_proxy_subresource("status"));
}

}  // namespace
}  // namespace podwarp::apiserver
