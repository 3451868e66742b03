#include "dns/resolv_conf.h"

#include <gtest/gtest.h>

#include "dns/server.h"

namespace podwarp::noded::dns {
namespace {

json::value js(std::string_view text) { return *parse_json(text); }

PodDnsSettings settings() {
  PodDnsSettings s;
  s.cluster_dns = {"169.254.20.10"};
  s.cluster_domain = "cluster.local";
  s.host = parse_resolv_conf(
      "# generated\nnameserver 192.0.2.53\nsearch old.example\n; x\nsearch corp.example. lab.\n"
      "options edns0 ndots:2\noptions ndots:3\nnameserver 192.0.2.54\n");
  return s;
}

TEST(ResolvConf, ParseAsKubelet) {
  auto h = settings().host;
  EXPECT_EQ(h.nameservers, (std::vector<std::string>{"192.0.2.53", "192.0.2.54"}));
  EXPECT_EQ(h.searches, (std::vector<std::string>{"corp.example", "lab"}));  // last line wins
  EXPECT_EQ(h.options, (std::vector<std::string>{"edns0", "ndots:3"}));
  EXPECT_TRUE(parse_resolv_conf("").empty());
}

TEST(ResolvConf, ClusterFirstDefault) {
  auto r = pod_dns_config(js(R"({"metadata":{"namespace":"shop"},"spec":{}})"), settings());
  ASSERT_TRUE(r);
  EXPECT_EQ(format_resolv_conf(r->conf),
            "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab\n"
            "nameserver 169.254.20.10\n"
            "options ndots:5\n");
  EXPECT_TRUE(r->warnings.empty());
  EXPECT_FALSE(r->host_as_is);
}

TEST(ResolvConf, HostNetworkAndPolicies) {
  auto s = settings();
  auto hostnet = pod_dns_config(
      js(R"({"metadata":{"namespace":"a"},"spec":{"hostNetwork":true,"dnsPolicy":"ClusterFirst"}})"), s);
  ASSERT_TRUE(hostnet);
  EXPECT_EQ(hostnet->conf, s.host);
  auto withhost = pod_dns_config(
      js(R"({"metadata":{"namespace":"a"},"spec":{"hostNetwork":true,"dnsPolicy":"ClusterFirstWithHostNet"}})"), s);
  ASSERT_TRUE(withhost);
  EXPECT_EQ(withhost->conf.nameservers, (std::vector<std::string>{"169.254.20.10"}));
  auto def = pod_dns_config(js(R"({"spec":{"dnsPolicy":"Default"}})"), s);
  ASSERT_TRUE(def);
  EXPECT_EQ(def->conf, s.host);
  EXPECT_TRUE(def->host_as_is);
  auto bad = pod_dns_config(js(R"({"spec":{"dnsPolicy":"Sometimes"}})"), s);
  EXPECT_FALSE(bad);
}

TEST(ResolvConf, NoClusterDnsFallsBackToHost) {
  auto s = settings();
  s.cluster_dns.clear();
  auto r = pod_dns_config(js(R"({"metadata":{"namespace":"a"},"spec":{}})"), s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->conf, s.host);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("Falling back to \"Default\" policy"), std::string::npos);
}

TEST(ResolvConf, NoneWithDnsConfig) {
  auto r = pod_dns_config(js(R"({"spec":{"dnsPolicy":"None","dnsConfig":{
      "nameservers":["1.2.3.4","1.2.3.4"],"searches":["ns1.svc.cluster-domain.example","my.dns.search.suffix"],
      "options":[{"name":"ndots","value":"2"},{"name":"edns0"}]}}})"),
                          settings());
  ASSERT_TRUE(r);
  EXPECT_EQ(format_resolv_conf(r->conf),
            "search ns1.svc.cluster-domain.example my.dns.search.suffix\n"
            "nameserver 1.2.3.4\n"
            "options ndots:2 edns0\n");
  auto empty = pod_dns_config(js(R"({"spec":{"dnsPolicy":"None"}})"), settings());
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->conf.empty());  // the caller then uses the host's file (containerd)
}

TEST(ResolvConf, DnsConfigMergedIntoClusterFirst) {
  auto r = pod_dns_config(js(R"({"metadata":{"namespace":"a"},"spec":{"dnsConfig":{
      "nameservers":["10.0.0.2"],"searches":["lab","extra.example"],
      "options":[{"name":"ndots","value":"1"},{"name":"single-request"}]}}})"),
                          settings());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->conf.nameservers, (std::vector<std::string>{"169.254.20.10", "10.0.0.2"}));
  EXPECT_EQ(r->conf.searches,
            (std::vector<std::string>{"a.svc.cluster.local", "svc.cluster.local", "cluster.local",
                                      "corp.example", "lab", "extra.example"}));
  EXPECT_EQ(r->conf.options, (std::vector<std::string>{"ndots:1", "single-request"}));
}

TEST(ResolvConf, Limits) {
  std::string ns, search;
  for (int i = 0; i < 5; ++i) ns += std::string(i ? "," : "") + "\"10.0.0." + std::to_string(i) + "\"";
  for (int i = 0; i < 40; ++i) search += std::string(i ? "," : "") + "\"d" + std::to_string(i) + ".example\"";
  auto r = pod_dns_config(js(R"({"spec":{"dnsPolicy":"None","dnsConfig":{"nameservers":[)" + ns +
                             R"(],"searches":[)" + search + "]}}}"),
                          settings());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->conf.nameservers.size(), kMaxNameservers);
  EXPECT_EQ(r->conf.searches.size(), kMaxSearchPaths);
  EXPECT_EQ(r->warnings.size(), 2u);
  // 2048 characters: 10 domains of 250 -> 8 fit (8*250 + 7 spaces = 2007).
  std::string longs;
  for (int i = 0; i < 10; ++i)
    longs += std::string(i ? "," : "") + "\"" + std::string(240, 'a') + std::to_string(1000000000 + i) + "\"";
  auto l = pod_dns_config(js(R"({"spec":{"dnsPolicy":"None","dnsConfig":{"nameservers":["1.1.1.1"],"searches":[)" +
                             longs + "]}}}"),
                          settings());
  ASSERT_TRUE(l);
  EXPECT_EQ(l->conf.searches.size(), 8u);
  // Longer than 253: dropped.
  auto too = pod_dns_config(js(R"({"spec":{"dnsPolicy":"None","dnsConfig":{"searches":[")" +
                               std::string(254, 'b') + R"(","ok.example"]}}})"),
                            settings());
  ASSERT_TRUE(too);
  EXPECT_EQ(too->conf.searches, (std::vector<std::string>{"ok.example"}));
}

TEST(Upstreams, FromResolvConf) {
  auto c = parse_resolv_conf("nameserver 127.0.0.53\nnameserver 169.254.20.10\nnameserver fe80::1%eth0\n"
                             "nameserver bogus\nnameserver 127.0.0.53\n");
  auto u = upstreams_from(c, {"169.254.20.10"});
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0], (Upstream{"127.0.0.53", 53}));
  EXPECT_EQ(u[1].address, "fe80::1");
}

}  // namespace
}  // namespace podwarp::noded::dns
