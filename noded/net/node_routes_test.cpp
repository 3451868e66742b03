#include "net/node_routes.h"

#include <gtest/gtest.h>

#include "net/pod_network.h"

namespace podwarp::noded::net {
namespace {

json::value node(const std::string& name, const std::string& cidr, const std::string& ip) {
  json::object n{{"metadata", json::object{{"name", name}}}};
  json::object spec;
  if (!cidr.empty()) {
    spec["podCIDR"] = cidr;
    spec["podCIDRs"] = json::array{json::value(cidr)};
  }
  n["spec"] = spec;
  json::array addrs{json::object{{"type", "Hostname"}, {"address", name}}};
  if (!ip.empty()) addrs.push_back(json::object{{"type", "InternalIP"}, {"address", ip}});
  n["status"] = json::object{{"addresses", addrs}};
  return n;
}

TEST(NodeRoutesTest, DesiredRoutesSkipSelfAndIncompleteNodes) {
  auto a = node("a", "10.244.0.0/24", "192.168.5.1");
  auto b = node("b", "10.244.1.0/24", "192.168.5.2");
  auto c = node("c", "", "192.168.5.3");                  // no podCIDR yet
  auto d = node("d", "10.244.3.0/24", "");                // no InternalIP
  auto e = node("e", "fd00:10:244::/64", "192.168.5.5");  // IPv6 only: not routed here
  auto f = node("f", "10.244.1.0/24", "192.168.5.6");     // claims b's CIDR: b (first) wins
  auto r = desired_node_routes({&f, &e, &d, &c, &b, &a}, "a");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].node, "b");
  EXPECT_EQ(to_string(r[0].pod_cidr), "10.244.1.0/24");
  EXPECT_EQ(to_string(r[0].via), "192.168.5.2");
  EXPECT_EQ(to_string(*node_pod_cidr(a)), "10.244.0.0/24");
  EXPECT_EQ(to_string(*node_internal_ip(a)), "192.168.5.1");
}

TEST(NodeRoutesTest, PlanAddsRemovesAndLeavesPodRoutesAlone) {
  Cidr4 b = *parse_cidr4("10.244.1.0/24"), c = *parse_cidr4("10.244.2.0/24");
  Cidr4 gone = *parse_cidr4("10.244.9.0/24");
  std::vector<Route4> current{
      {b, parse_ipv4("192.168.5.2"), 0, kRouteProtocol},                  // as desired
      {c, parse_ipv4("192.168.5.9"), 0, kRouteProtocol},                  // moved gateway
      {gone, parse_ipv4("192.168.5.4"), 0, kRouteProtocol},               // node gone
      {*parse_cidr4("10.244.0.7/32"), std::nullopt, 12, kRouteProtocol},  // a pod's route
  };
  std::vector<NodeRoute> desired{{"b", b, *parse_ipv4("192.168.5.2")},
                                 {"c", c, *parse_ipv4("192.168.5.3")}};
  auto plan = plan_node_routes(current, desired);
  ASSERT_EQ(plan.remove.size(), 2u);
  EXPECT_EQ(plan.remove[0].dst, c);
  EXPECT_EQ(plan.remove[1].dst, gone);
  ASSERT_EQ(plan.replace.size(), 1u);
  EXPECT_EQ(plan.replace[0].dst, c);
  EXPECT_EQ(to_string(*plan.replace[0].via), "192.168.5.3");
  EXPECT_EQ(plan.replace[0].protocol, kRouteProtocol);
  auto none = plan_node_routes(current, {});
  EXPECT_EQ(none.remove.size(), 3u);  // never the pod route
  EXPECT_TRUE(none.replace.empty());
}

}  // namespace
}  // namespace podwarp::noded::net
