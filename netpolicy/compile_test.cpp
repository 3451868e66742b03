#include "netpolicy/compile.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>

namespace podwarp::netpolicy {
namespace {

using ::testing::HasSubstr;

constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;

std::uint32_t ip(const char* text) {
  in_addr a{};
  EXPECT_EQ(::inet_pton(AF_INET, text, &a), 1) << text;
  return a.s_addr;
}

Prefix prefix(const char* addr, std::uint8_t len) { return Prefix{ip(addr), len}; }

// The cluster of one test: JSON objects kept alive for the pointers Cluster holds.
class World {
 public:
  const json::value* add(std::string_view text) {
    store_.push_back(json::parse(text));
    return &store_.back();
  }
  void policy(std::string_view text) { cluster_.policies.push_back(add(text)); }
  void ns(std::string_view text) { cluster_.namespaces.push_back(add(text)); }
  // A running pod; `extra` is appended inside the top-level object (spec, status overrides).
  const json::value* pod(const std::string& ns, const std::string& name, const std::string& labels,
                         const std::string& pod_ip, const std::string& spec = "{}",
                         const std::string& phase = "Running") {
    const json::value* p =
        add(R"({"metadata":{"namespace":")" + ns + R"(","name":")" + name + R"(","labels":)" +
            labels + R"(},"spec":)" + spec + R"(,"status":{"phase":")" + phase + R"(","podIP":")" +
            pod_ip + R"("}})");
    cluster_.pods.push_back(p);
    return p;
  }
  // A pod on this node: a peer like any other, and compiled for.
  const json::value* local(const std::string& ns, const std::string& name,
                           const std::string& labels, const char* pod_ip,
                           const std::string& spec = "{}") {
    const json::value* p = pod(ns, name, labels, pod_ip, spec);
    local_.push_back(LocalPod{p, ip(pod_ip)});
    return p;
  }
  std::vector<LocalPod>& locals() { return local_; }
  Cluster& cluster() { return cluster_; }
  Compiled compile() const { return netpolicy::compile(cluster_, local_); }

 private:
  std::deque<json::value> store_;
  Cluster cluster_;
  std::vector<LocalPod> local_;
};

const EndpointPolicy& endpoint(const Compiled& c, const char* addr) {
  static const EndpointPolicy kNone;
  auto it = c.endpoints.find(ip(addr));
  EXPECT_NE(it, c.endpoints.end()) << addr;
  return it == c.endpoints.end() ? kNone : it->second;
}

const Table& ingress(const Compiled& c, const char* addr) {
  static const Table kEmpty;
  const EndpointPolicy& ep = endpoint(c, addr);
  EXPECT_TRUE(ep.ingress.has_value()) << addr;
  return ep.ingress ? *ep.ingress : kEmpty;
}

const Table& egress(const Compiled& c, const char* addr) {
  static const Table kEmpty;
  const EndpointPolicy& ep = endpoint(c, addr);
  EXPECT_TRUE(ep.egress.has_value()) << addr;
  return ep.egress ? *ep.egress : kEmpty;
}

TEST(CompileTest, PodNoPolicySelectsHasNoTables) {
  World w;
  w.local("default", "web", R"({"app":"web"})", "10.244.1.2");
  w.policy(R"({"metadata":{"namespace":"default","name":"db"},
               "spec":{"podSelector":{"matchLabels":{"app":"db"}}}})");
  w.policy(R"({"metadata":{"namespace":"other","name":"all"},"spec":{"podSelector":{}}})");
  Compiled c = w.compile();
  EXPECT_TRUE(c.problems.empty());
  const EndpointPolicy& ep = endpoint(c, "10.244.1.2");
  EXPECT_FALSE(ep.ingress);
  EXPECT_FALSE(ep.egress);
  EXPECT_TRUE(ep.policies.empty());
}

TEST(CompileTest, IngressTypeWithoutRulesDeniesEverything) {
  World w;
  w.local("default", "web", R"({"app":"web"})", "10.244.1.2");
  w.pod("default", "client", R"({"app":"client"})", "10.244.1.3");
  w.policy(R"({"metadata":{"namespace":"default","name":"deny"},
               "spec":{"podSelector":{},"policyTypes":["Ingress"]}})");
  Compiled c = w.compile();
  EXPECT_TRUE(c.problems.empty());
  const EndpointPolicy& ep = endpoint(c, "10.244.1.2");
  ASSERT_TRUE(ep.ingress);
  EXPECT_EQ(*ep.ingress, Table{});
  EXPECT_FALSE(ep.egress);
  EXPECT_EQ(ep.policies, std::vector<std::string>{"default/deny"});
  for (const char* peer : {"10.244.1.3", "0.0.0.0", "8.8.8.8"}) {
    EXPECT_FALSE(allows(*ep.ingress, ip(peer), kTcp, 80));
    EXPECT_FALSE(allows(*ep.ingress, ip(peer), kIcmp, 0));
  }
}

TEST(CompileTest, PolicyTypesDefaultToIngressPlusEgressWhenThereAreEgressRules) {
  World w;
  w.local("default", "web", R"({"app":"web"})", "10.244.1.2");
  w.local("default", "api", R"({"app":"api"})", "10.244.1.4");
  w.policy(R"({"metadata":{"namespace":"default","name":"web"},
               "spec":{"podSelector":{"matchLabels":{"app":"web"}},
                       "egress":[{"ports":[{"protocol":"UDP","port":53}]}]}})");
  // Without egress rules (an empty list counts as none) only ingress is isolated.
  w.policy(R"({"metadata":{"namespace":"default","name":"api"},
               "spec":{"podSelector":{"matchLabels":{"app":"api"}},"egress":[],
                       "ingress":[{}]}})");
  Compiled c = w.compile();
  EXPECT_TRUE(c.problems.empty());

  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_FALSE(allows(in, ip("10.244.1.4"), kTcp, 80));
  const Table& out = egress(c, "10.244.1.2");
  EXPECT_TRUE(allows(out, ip("10.96.0.10"), kUdp, 53));
  EXPECT_TRUE(allows(out, ip("1.2.3.4"), kUdp, 53));
  EXPECT_FALSE(allows(out, ip("10.96.0.10"), kTcp, 53));
  EXPECT_FALSE(allows(out, ip("10.96.0.10"), kUdp, 54));

  const EndpointPolicy& api = endpoint(c, "10.244.1.4");
  EXPECT_FALSE(api.egress);
  ASSERT_TRUE(api.ingress);
  EXPECT_TRUE(allows(*api.ingress, ip("1.2.3.4"), kIcmp, 0));  // `- {}`: everything
  EXPECT_EQ(api.ingress->peers, (std::map<Prefix, std::uint64_t>{{prefix("0.0.0.0", 0), 1}}));
  EXPECT_EQ(api.ingress->ranges, (std::vector<Range>{{0, 0, 0, 65535}}));
}

TEST(CompileTest, PodSelectorPeersAreOfThePolicysNamespaceOnly) {
  World w;
  w.local("default", "web", R"({"app":"web"})", "10.244.1.2");
  w.pod("default", "client", R"({"app":"client"})", "10.244.1.3");
  w.pod("default", "other", R"({"app":"other"})", "10.244.1.5");
  w.pod("prod", "client", R"({"app":"client"})", "10.244.2.3");
  w.policy(R"({"metadata":{"namespace":"default","name":"web"},
               "spec":{"podSelector":{"matchLabels":{"app":"web"}},
                       "ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"client"}}}]}]}})");
  Compiled c = w.compile();
  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_TRUE(allows(in, ip("10.244.1.3"), kTcp, 8088));
  EXPECT_FALSE(allows(in, ip("10.244.1.5"), kTcp, 8088));
  EXPECT_FALSE(allows(in, ip("10.244.2.3"), kTcp, 8088));
  EXPECT_EQ(in.peers, (std::map<Prefix, std::uint64_t>{{prefix("10.244.1.3", 32), 1}}));
}

TEST(CompileTest, NamespaceSelectorPeersAcrossNamespaces) {
  World w;
  w.local("default", "web", R"({"app":"web"})", "10.244.1.2");
  w.ns(R"({"metadata":{"name":"team-a","labels":{"team":"a"}}})");
  w.ns(R"({"metadata":{"name":"team-b","labels":{"team":"b"}}})");
  w.pod("team-a", "x", "{}", "10.244.3.1");
  w.pod("team-b", "y", "{}", "10.244.3.2");
  w.pod("loose", "z", "{}", "10.244.3.3");  // no Namespace object: only the automatic label
  w.policy(R"({"metadata":{"namespace":"default","name":"web"},
               "spec":{"podSelector":{},"ingress":[
                 {"from":[{"namespaceSelector":{"matchLabels":{"team":"a"}}}],
                  "ports":[{"port":80}]},
                 {"from":[{"namespaceSelector":{"matchLabels":
                            {"kubernetes.io/metadata.name":"loose"}}}],
                  "ports":[{"port":81}]},
                 {"from":[{"namespaceSelector":{}}],"ports":[{"port":82}]}]}})");
  Compiled c = w.compile();
  EXPECT_TRUE(c.problems.empty());
  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_TRUE(allows(in, ip("10.244.3.1"), kTcp, 80));
  EXPECT_FALSE(allows(in, ip("10.244.3.2"), kTcp, 80));
  EXPECT_FALSE(allows(in, ip("10.244.3.3"), kTcp, 80));
  EXPECT_TRUE(allows(in, ip("10.244.3.3"), kTcp, 81));
  EXPECT_FALSE(allows(in, ip("10.244.3.1"), kTcp, 81));
  // {} selects every namespace: every pod, including the local one, but no other address.
  for (const char* peer : {"10.244.3.1", "10.244.3.2", "10.244.3.3", "10.244.1.2"}) {
    EXPECT_TRUE(allows(in, ip(peer), kTcp, 82)) << peer;
  }
  EXPECT_FALSE(allows(in, ip("10.244.3.4"), kTcp, 82));
}

TEST(CompileTest, NamespaceAndPodSelectorTogetherSelectBoth) {
  World w;
  w.local("default", "web", "{}", "10.244.1.2");
  w.ns(R"({"metadata":{"name":"team-a","labels":{"team":"a"}}})");
  w.ns(R"({"metadata":{"name":"team-b","labels":{"team":"b"}}})");
  w.pod("team-a", "mon", R"({"role":"monitoring"})", "10.244.3.1");
  w.pod("team-a", "app", R"({"role":"app"})", "10.244.3.2");
  w.pod("team-b", "mon", R"({"role":"monitoring"})", "10.244.3.3");
  w.policy(R"({"metadata":{"namespace":"default","name":"web"},
               "spec":{"podSelector":{},"ingress":[{"from":[
                 {"namespaceSelector":{"matchLabels":{"team":"a"}},
                  "podSelector":{"matchLabels":{"role":"monitoring"}}}]}]}})");
  Compiled c = w.compile();
  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_TRUE(allows(in, ip("10.244.3.1"), kTcp, 9100));
  EXPECT_FALSE(allows(in, ip("10.244.3.2"), kTcp, 9100));
  EXPECT_FALSE(allows(in, ip("10.244.3.3"), kTcp, 9100));
}

TEST(CompileTest, IpBlockExceptIsDeniedUnlessAnotherRuleAllowsIt) {
  World w;
  w.local("default", "web", "{}", "10.244.1.2");
  w.pod("default", "inside", R"({"app":"admin"})", "10.1.0.5");
  w.policy(R"({"metadata":{"namespace":"default","name":"web"},
               "spec":{"podSelector":{},"ingress":[
                 {"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.1.0.0/16"]}}],
                  "ports":[{"port":80}]},
                 {"from":[{"podSelector":{"matchLabels":{"app":"admin"}}}],
                  "ports":[{"port":443}]}]}})");
  Compiled c = w.compile();
  EXPECT_TRUE(c.problems.empty());
  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_TRUE(allows(in, ip("10.2.3.4"), kTcp, 80));
  EXPECT_FALSE(allows(in, ip("10.2.3.4"), kTcp, 443));
  EXPECT_FALSE(allows(in, ip("10.1.2.3"), kTcp, 80));  // in the except
  EXPECT_FALSE(allows(in, ip("10.1.0.5"), kTcp, 80));  // the pod is in the except too
  EXPECT_TRUE(allows(in, ip("10.1.0.5"), kTcp, 443));  // but its own rule allows it
  EXPECT_FALSE(allows(in, ip("11.0.0.1"), kTcp, 80));
  // Bits in ascending order of port sets: 80 -> 0, 443 -> 1. The except stays, with mask 0,
  // to shadow 10.0.0.0/8.
  EXPECT_EQ(in.ranges, (std::vector<Range>{{kTcp, 0, 80, 80}, {kTcp, 1, 443, 443}}));
  EXPECT_EQ(in.peers, (std::map<Prefix, std::uint64_t>{{prefix("10.0.0.0", 8), 1},
                                                       {prefix("10.1.0.0", 16), 0},
                                                       {prefix("10.1.0.5", 32), 2}}));
}

TEST(CompileTest, EgressEverywhereButAnExcept) {
  World w;
  w.local("default", "web", "{}", "10.244.1.2");
  w.pod("default", "db", R"({"app":"db"})", "10.244.1.9");
  w.policy(R"({"metadata":{"namespace":"default","name":"web"},
               "spec":{"podSelector":{},"policyTypes":["Egress"],"egress":[
                 {"to":[{"ipBlock":{"cidr":"0.0.0.0/0","except":["10.0.0.0/8"]}}],
                  "ports":[{"port":443}]},
                 {"to":[{"ipBlock":{"cidr":"10.244.1.0/24"}},
                        {"podSelector":{"matchLabels":{"app":"db"}}}],
                  "ports":[{"port":443}]}]}})");
  Compiled c = w.compile();
  const Table& out = egress(c, "10.244.1.2");
  EXPECT_FALSE(endpoint(c, "10.244.1.2").ingress);
  // One port set, one bit; the db pod's /32 is redundant inside 10.244.1.0/24.
  EXPECT_EQ(out.ranges, (std::vector<Range>{{kTcp, 0, 443, 443}}));
  EXPECT_EQ(out.peers, (std::map<Prefix, std::uint64_t>{{prefix("0.0.0.0", 0), 1},
                                                        {prefix("10.0.0.0", 8), 0},
                                                        {prefix("10.244.1.0", 24), 1}}));
  EXPECT_TRUE(allows(out, ip("1.1.1.1"), kTcp, 443));
  EXPECT_FALSE(allows(out, ip("10.9.9.9"), kTcp, 443));
  EXPECT_TRUE(allows(out, ip("10.244.1.77"), kTcp, 443));
  EXPECT_TRUE(allows(out, ip("10.244.1.9"), kTcp, 443));
  EXPECT_FALSE(allows(out, ip("10.244.1.9"), kTcp, 80));
}

TEST(CompileTest, PortsProtocolsRangesAndEverything) {
  World w;
  w.local("default", "web", "{}", "10.244.1.2");
  w.policy(R"({"metadata":{"namespace":"default","name":"ports"},
               "spec":{"podSelector":{},"ingress":[
                 {"from":[{"ipBlock":{"cidr":"192.168.0.0/24"}}],"ports":[
                   {"port":80},{"protocol":"UDP","port":53},
                   {"protocol":"TCP","port":8000,"endPort":8088},{"protocol":"SCTP"}]},
                 {"from":[{"ipBlock":{"cidr":"192.168.1.0/24"}}]}]}})");
  Compiled c = w.compile();
  EXPECT_TRUE(c.problems.empty());
  const Table& in = ingress(c, "10.244.1.2");
  std::uint32_t a = ip("192.168.0.9");
  EXPECT_TRUE(allows(in, a, kTcp, 80));
  EXPECT_FALSE(allows(in, a, kUdp, 80));
  EXPECT_TRUE(allows(in, a, kUdp, 53));
  EXPECT_FALSE(allows(in, a, kTcp, 53));
  EXPECT_FALSE(allows(in, a, kTcp, 7999));
  EXPECT_TRUE(allows(in, a, kTcp, 8000));
  EXPECT_TRUE(allows(in, a, kTcp, 8040));
  EXPECT_TRUE(allows(in, a, kTcp, 8088));
  EXPECT_FALSE(allows(in, a, kTcp, 8089));
  EXPECT_TRUE(allows(in, a, 132, 1));
  EXPECT_TRUE(allows(in, a, 132, 65535));
  EXPECT_FALSE(allows(in, a, kIcmp, 0));
  std::uint32_t b = ip("192.168.1.9");  // no ports: every protocol, ICMP included
  EXPECT_TRUE(allows(in, b, kIcmp, 0));
  EXPECT_TRUE(allows(in, b, kUdp, 9));
  EXPECT_TRUE(allows(in, b, 47, 0));
}

TEST(CompileTest, EqualPortSetsShareOneBitAndRangesMerge) {
  World w;
  w.local("default", "web", "{}", "10.244.1.2");
  w.policy(R"({"metadata":{"namespace":"default","name":"p"},
               "spec":{"podSelector":{},"ingress":[
                 {"from":[{"ipBlock":{"cidr":"10.1.0.0/16"}}],
                  "ports":[{"port":81,"endPort":90},{"port":80},{"port":85}]},
                 {"from":[{"ipBlock":{"cidr":"10.2.0.0/16"}}],
                  "ports":[{"port":80,"endPort":90}]}]}})");
  Compiled c = w.compile();
  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_EQ(in.ranges, (std::vector<Range>{{kTcp, 0, 80, 90}}));
  EXPECT_EQ(in.peers, (std::map<Prefix, std::uint64_t>{{prefix("10.1.0.0", 16), 1},
                                                       {prefix("10.2.0.0", 16), 1}}));
}

TEST(CompileTest, NamedPortsInIngressAreTheLocalPods) {
  World w;
  w.local("default", "web", R"({"app":"web"})", "10.244.1.2",
          R"({"containers":[{"name":"c","ports":[
               {"name":"http","containerPort":8088},
               {"name":"dns","containerPort":5353,"protocol":"UDP"}]}]})");
  w.local("default", "other", R"({"app":"other"})", "10.244.1.3",
          R"({"containers":[{"name":"c","ports":[{"name":"http","containerPort":9090}]}]})");
  w.policy(R"({"metadata":{"namespace":"default","name":"named"},
               "spec":{"podSelector":{},"ingress":[
                 {"ports":[{"port":"http"},{"port":"dns","protocol":"UDP"},
                           {"port":"dns"},{"port":"nope"}]}]}})");
  Compiled c = w.compile();
  EXPECT_TRUE(c.problems.empty());
  const Table& web = ingress(c, "10.244.1.2");
  EXPECT_TRUE(allows(web, ip("1.2.3.4"), kTcp, 8088));  // from anywhere, ipBlock-style peers too
  EXPECT_TRUE(allows(web, ip("10.244.1.3"), kTcp, 8088));
  EXPECT_FALSE(allows(web, ip("10.244.1.3"), kTcp, 9090));
  EXPECT_TRUE(allows(web, ip("10.244.1.3"), kUdp, 5353));
  EXPECT_FALSE(allows(web, ip("10.244.1.3"), kTcp, 5353));  // "dns" is UDP only
  const Table& other = ingress(c, "10.244.1.3");
  EXPECT_TRUE(allows(other, ip("10.244.1.2"), kTcp, 9090));
  EXPECT_FALSE(allows(other, ip("10.244.1.2"), kTcp, 8088));
  EXPECT_FALSE(allows(other, ip("10.244.1.2"), kUdp, 5353));
}

TEST(CompileTest, NamedPortsInEgressArePerPeerPod) {
  World w;
  w.local("default", "client", R"({"app":"client"})", "10.244.1.2");
  w.pod("default", "s1", R"({"app":"server"})", "10.244.2.1",
        R"({"containers":[{"name":"c","ports":[{"name":"web","containerPort":8088}]}]})");
  w.pod(
      "default", "s2", R"({"app":"server"})", "10.244.2.2",
      R"({"containers":[{"name":"a"},{"name":"b","ports":[{"name":"web","containerPort":9090}]}]})");
  w.pod("default", "s3", R"({"app":"server"})", "10.244.2.3");  // no such port: nothing
  w.pod("default", "far", R"({"app":"far"})", "10.9.0.1",
        R"({"containers":[{"name":"c","ports":[{"name":"web","containerPort":7070}]}]})");
  w.policy(R"({"metadata":{"namespace":"default","name":"egress"},
               "spec":{"podSelector":{"matchLabels":{"app":"client"}},"policyTypes":["Egress"],
                       "egress":[
                 {"to":[{"podSelector":{"matchLabels":{"app":"server"}}}],"ports":[{"port":"web"}]},
                 {"to":[{"ipBlock":{"cidr":"10.9.0.0/16"}}],"ports":[{"port":"web"},{"port":53}]}]}})");
  Compiled c = w.compile();
  EXPECT_TRUE(c.problems.empty());
  const Table& out = egress(c, "10.244.1.2");
  EXPECT_TRUE(allows(out, ip("10.244.2.1"), kTcp, 8088));
  EXPECT_FALSE(allows(out, ip("10.244.2.1"), kTcp, 9090));
  EXPECT_TRUE(allows(out, ip("10.244.2.2"), kTcp, 9090));
  EXPECT_FALSE(allows(out, ip("10.244.2.2"), kTcp, 8088));
  EXPECT_FALSE(allows(out, ip("10.244.2.3"), kTcp, 8088));
  EXPECT_FALSE(allows(out, ip("10.244.2.3"), kTcp, 9090));
  // In an ipBlock, a named port is only at the pods inside it that have it.
  EXPECT_TRUE(allows(out, ip("10.9.0.1"), kTcp, 7070));
  EXPECT_FALSE(allows(out, ip("10.9.0.2"), kTcp, 7070));
  EXPECT_TRUE(allows(out, ip("10.9.0.2"), kTcp, 53));
  EXPECT_FALSE(allows(out, ip("10.244.2.1"), kTcp, 53));
}

TEST(CompileTest, PoliciesAreUnioned) {
  World w;
  w.local("default", "web", R"({"app":"web"})", "10.244.1.2");
  w.pod("default", "a", R"({"app":"a"})", "10.244.1.3");
  w.pod("default", "b", R"({"app":"b"})", "10.244.1.4");
  w.policy(R"({"metadata":{"namespace":"default","name":"zeta"},
               "spec":{"podSelector":{"matchLabels":{"app":"web"}},
                       "ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"a"}}}],
                                   "ports":[{"port":80}]}]}})");
  w.policy(R"({"metadata":{"namespace":"default","name":"alpha"},
               "spec":{"podSelector":{},
                       "ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"b"}}}],
                                   "ports":[{"port":81}]}]}})");
  Compiled c = w.compile();
  const EndpointPolicy& ep = endpoint(c, "10.244.1.2");
  EXPECT_EQ(ep.policies, (std::vector<std::string>{"default/alpha", "default/zeta"}));
  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_TRUE(allows(in, ip("10.244.1.3"), kTcp, 80));
  EXPECT_FALSE(allows(in, ip("10.244.1.3"), kTcp, 81));
  EXPECT_TRUE(allows(in, ip("10.244.1.4"), kTcp, 81));
  EXPECT_FALSE(allows(in, ip("10.244.1.4"), kTcp, 80));
}

TEST(CompileTest, HostNetworkTerminatedAndIpv6OnlyPodsAreNoPeers) {
  World w;
  w.local("default", "web", "{}", "10.244.1.2");
  w.pod("default", "ok", R"({"app":"x"})", "10.244.1.10");
  w.pod("default", "host", R"({"app":"x"})", "192.168.5.1", R"({"hostNetwork":true})");
  w.pod("default", "done", R"({"app":"x"})", "10.244.1.11", "{}", "Succeeded");
  w.pod("default", "failed", R"({"app":"x"})", "10.244.1.12", "{}", "Failed");
  w.pod("default", "v6", R"({"app":"x"})", "fd00::5");
  w.policy(R"({"metadata":{"namespace":"default","name":"p"},
               "spec":{"podSelector":{},
                       "ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"x"}}}]}]}})");
  Compiled c = w.compile();
  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_EQ(in.peers, (std::map<Prefix, std::uint64_t>{{prefix("10.244.1.10", 32), 1}}));
  EXPECT_FALSE(allows(in, ip("192.168.5.1"), kTcp, 80));
  EXPECT_FALSE(allows(in, ip("10.244.1.11"), kTcp, 80));
}

TEST(CompileTest, LocalPodIpIsUsedBeforeTheStatusHasIt) {
  World w;
  const json::value* web = w.add(
      R"({"metadata":{"namespace":"default","name":"web","labels":{"app":"web"}},
          "spec":{},"status":{"phase":"Pending"}})");
  w.cluster().pods.push_back(web);
  w.locals().push_back(LocalPod{web, ip("10.244.1.2")});
  w.local("default", "client", R"({"app":"client"})", "10.244.1.3");
  w.policy(R"({"metadata":{"namespace":"default","name":"p"},
               "spec":{"podSelector":{"matchLabels":{"app":"client"}},"policyTypes":["Egress"],
                       "egress":[{"to":[{"podSelector":{"matchLabels":{"app":"web"}}}]}]}})");
  Compiled c = w.compile();
  EXPECT_TRUE(endpoint(c, "10.244.1.2").policies.empty());
  EXPECT_TRUE(allows(egress(c, "10.244.1.3"), ip("10.244.1.2"), kTcp, 80));
}

TEST(CompileTest, TooManyPortSetsAreCutOffTowardsDeny) {
  World w;
  w.local("default", "web", "{}", "10.244.1.2");
  std::string rules;
  for (int i = 0; i < 65; ++i) {
    if (i > 0) rules += ",";
    rules += R"({"from":[{"ipBlock":{"cidr":"10.1.0.0/16"}}],"ports":[{"port":)" +
             std::to_string(1000 + 2 * i) + "}]}";
  }
  w.policy(R"({"metadata":{"namespace":"default","name":"many"},
               "spec":{"podSelector":{},"ingress":[)" +
           rules + "]}}");
  Compiled c = w.compile();
  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_TRUE(in.truncated);
  EXPECT_EQ(in.ranges.size(), kMaxRules);
  int allowed = 0;
  for (int i = 0; i < 65; ++i) {
    allowed += allows(in, ip("10.1.2.3"), kTcp, static_cast<std::uint16_t>(1000 + 2 * i));
    EXPECT_FALSE(allows(in, ip("10.1.2.3"), kTcp, static_cast<std::uint16_t>(1001 + 2 * i)));
  }
  EXPECT_EQ(allowed, 64);
  EXPECT_FALSE(allows(in, ip("10.2.0.1"), kTcp, 1000));
}

TEST(CompileTest, TooManyRangesAreCutOffTowardsDeny) {
  World w;
  w.local("default", "web", "{}", "10.244.1.2");
  std::string ports;
  for (int i = 0; i < 130; ++i) {
    if (i > 0) ports += ",";
    ports += R"({"port":)" + std::to_string(2000 + 2 * i) + "}";
  }
  w.policy(R"({"metadata":{"namespace":"default","name":"wide"},
               "spec":{"podSelector":{},"ingress":[
                 {"from":[{"ipBlock":{"cidr":"10.1.0.0/16"}}],"ports":[)" +
           ports + R"(]},
                 {"from":[{"ipBlock":{"cidr":"10.2.0.0/16"}}],"ports":[{"port":22}]}]}})");
  Compiled c = w.compile();
  const Table& in = ingress(c, "10.244.1.2");
  EXPECT_TRUE(in.truncated);
  EXPECT_LE(in.ranges.size(), kMaxRanges);
  EXPECT_FALSE(allows(in, ip("10.1.0.1"), kTcp, 2000));
  EXPECT_TRUE(allows(in, ip("10.2.0.1"), kTcp, 22));
}

TEST(CompileTest, MalformedPiecesAreProblemsNotExceptions) {
  World w;
  w.local("default", "web", "{}", "10.244.1.2");
  w.pod("default", "client", R"({"app":"client"})", "10.244.1.3");
  w.policy(R"({"metadata":{"namespace":"default","name":"nospec"}})");
  w.policy(
      R"({"metadata":{"namespace":"default","name":"badsel"},"spec":{"podSelector":"app=web"}})");
  w.policy(R"({"metadata":{"namespace":"default","name":"shapes"},
               "spec":{"podSelector":{},"policyTypes":["Ingress","Egress"],
                       "ingress":[
                 {"from":[{"ipBlock":{"cidr":"banana"}}]},
                 {"from":[{"podSelector":{"matchLabels":{"app":"client"}}}],
                  "ports":[{"port":true}]},
                 {"from":[{"podSelector":{"matchLabels":{"app":"client"}}}],
                  "ports":[{"port":true},{"port":443}]},
                 {"from":"everyone"},
                 {"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":[7]}}]},
                 {"from":[{}]},
                 {"ports":[{"protocol":"ICMP"}]},
                 {"ports":[{"port":80,"endPort":79}]},
                 42],
                       "egress":{"to":[]}}})");
  w.cluster().policies.push_back(w.add("[1,2]"));
  w.cluster().pods.push_back(w.add(R"({"metadata":"x","spec":[],"status":{"podIPs":7}})"));
  w.cluster().namespaces.push_back(w.add(R"({"metadata":{"name":"x","labels":"y"}})"));
  Compiled c;
  ASSERT_NO_THROW(c = w.compile());
  std::string all;
  for (const auto& p : c.problems) all += p + "\n";
  EXPECT_THAT(all, HasSubstr("default/nospec: spec"));
  EXPECT_THAT(all, HasSubstr("default/badsel: spec.podSelector"));
  EXPECT_THAT(all, HasSubstr("spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR \"banana\""));
  EXPECT_THAT(all, HasSubstr("spec.ingress[1].ports[0].port"));
  EXPECT_THAT(all, HasSubstr("spec.ingress[3].from: must be a list"));
  EXPECT_THAT(all, HasSubstr("spec.ingress[4].from[0].ipBlock.except[0]"));
  EXPECT_THAT(all, HasSubstr("spec.ingress[5].from[0]"));
  EXPECT_THAT(all, HasSubstr("spec.ingress[6].ports[0].protocol"));
  EXPECT_THAT(all, HasSubstr("spec.ingress[7].ports[0].endPort"));
  EXPECT_THAT(all, HasSubstr("spec.ingress[8]: must be an object"));
  EXPECT_THAT(all, HasSubstr("spec.egress: must be a list"));

  const EndpointPolicy& ep = endpoint(c, "10.244.1.2");
  EXPECT_EQ(ep.policies, std::vector<std::string>{"default/shapes"});
  ASSERT_TRUE(ep.ingress);
  ASSERT_TRUE(ep.egress);
  // What survives: only the client on 443; a rule whose peers or ports were all bad allows
  // nothing rather than everything.
  EXPECT_TRUE(allows(*ep.ingress, ip("10.244.1.3"), kTcp, 443));
  EXPECT_FALSE(allows(*ep.ingress, ip("10.244.1.3"), kTcp, 80));
  EXPECT_FALSE(allows(*ep.ingress, ip("10.1.1.1"), kTcp, 443));
  EXPECT_FALSE(allows(*ep.ingress, ip("10.1.1.1"), kIcmp, 0));
  EXPECT_FALSE(allows(*ep.egress, ip("10.244.1.3"), kTcp, 443));
}

// The prefix folding against the definition, on random nested ipBlocks, excepts and pods in
// one /24: every address of it, every port used.
TEST(CompileTest, RandomBlocksExceptsAndPodsMatchTheDefinition) {
  struct Peer {
    std::uint32_t net = 0;  // host order, last octet only
    int len = 32;
    std::vector<std::pair<std::uint32_t, int>> excepts;
    int port = 0;
    bool contains(std::uint32_t a) const {
      auto in = [&](std::uint32_t n, int l) { return ((a ^ n) >> (32 - l)) == 0; };
      if (!in(net, len)) return false;
      for (auto [n, l] : excepts) {
        if (in(n, l)) return false;
      }
      return true;
    }
  };
  auto quad = [](std::uint32_t host) { return "10.0.0." + std::to_string(host & 0xff); };
  std::mt19937 rng(7);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto random_prefix = [&] {
    int len = pick(24, 32);
    std::uint32_t host = 0x0a000000u | static_cast<std::uint32_t>(pick(0, 255));
    return std::pair{host & (len == 32 ? ~0u : ~0u << (32 - len)), len};
  };
  for (int round = 0; round < 200; ++round) {
    World w;
    w.local("default", "web", "{}", "10.1.0.2");
    std::vector<Peer> expected;
    std::string rules;
    for (int i = 0, n = pick(1, 6); i < n; ++i) {
      Peer peer;
      peer.port = 100 + pick(0, 2);
      std::string from;
      if (pick(0, 2) == 0) {  // a pod
        peer.net = 0x0a000000u | static_cast<std::uint32_t>(pick(0, 255));
        std::string id = std::to_string(round) + "-" + std::to_string(i);
        w.pod("default", "p" + id, R"({"id":")" + id + R"("})", quad(peer.net));
        from = R"({"podSelector":{"matchLabels":{"id":")" + id + R"("}}})";
      } else {
        std::tie(peer.net, peer.len) = random_prefix();
        std::string excepts;
        for (int e = 0, m = pick(0, 3); e < m; ++e) {
          auto ex = random_prefix();
          peer.excepts.push_back(ex);
          excepts += (e ? ",\"" : "\"") + quad(ex.first) + "/" + std::to_string(ex.second) + "\"";
        }
        from = R"({"ipBlock":{"cidr":")" + quad(peer.net) + "/" + std::to_string(peer.len) +
               R"(","except":[)" + excepts + "]}}";
      }
      rules += std::string(i ? "," : "") + R"({"from":[)" + from + R"(],"ports":[{"port":)" +
               std::to_string(peer.port) + "}]}";
      expected.push_back(peer);
    }
    w.policy(R"({"metadata":{"namespace":"default","name":"r"},
                 "spec":{"podSelector":{},"ingress":[)" +
             rules + "]}}");
    Compiled c = w.compile();
    ASSERT_TRUE(c.problems.empty()) << c.problems.front();
    const Table& in = ingress(c, "10.1.0.2");
    for (std::uint32_t host = 0; host < 256; ++host) {
      std::uint32_t a = 0x0a000000u | host;
      for (int port = 100; port <= 102; ++port) {
        bool want = std::ranges::any_of(
            expected, [&](const Peer& p) { return p.port == port && p.contains(a); });
        ASSERT_EQ(allows(in, htonl(a), kTcp, static_cast<std::uint16_t>(port)), want)
            << "round " << round << " " << quad(a) << ":" << port << " rules " << rules;
      }
    }
    // No redundant entries: each differs from the longest entry covering it (none = 0).
    for (const auto& [p, mask] : in.peers) {
      std::uint64_t parent = 0;
      for (int len = p.len - 1; len >= 0; --len) {
        std::uint32_t m = len == 0 ? 0 : ~0u << (32 - len);
        if (auto it =
                in.peers.find(Prefix{htonl(ntohl(p.addr) & m), static_cast<std::uint8_t>(len)});
            it != in.peers.end()) {
          parent = it->second;
          break;
        }
      }
      EXPECT_NE(mask, parent);
    }
  }
}

TEST(CompileTest, AllowsOnAnEmptyTableDenies) {
  EXPECT_FALSE(allows(Table{}, ip("10.0.0.1"), kTcp, 80));
  Table t;
  t.ranges.push_back({0, 0, 0, 65535});
  EXPECT_FALSE(allows(t, ip("10.0.0.1"), kTcp, 80));  // no peer prefix
  t.peers[prefix("10.0.0.0", 8)] = 1;
  t.peers[prefix("10.0.0.0", 24)] = 0;
  EXPECT_TRUE(allows(t, ip("10.0.1.1"), kUdp, 1));
  EXPECT_FALSE(allows(t, ip("10.0.0.1"), kUdp, 1));
}

}  // namespace
}  // namespace podwarp::netpolicy
