// Service + EndpointSlice JSON -> ServiceDesc (pure, no root).
#include "lb/service_desc.h"

#include <gtest/gtest.h>

namespace podwarp::noded::lb {
namespace {

json::value parse(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v) << v.error();
  return v ? *v : json::value();
}

IpAddr ip(std::string_view s) { return *IpAddr::parse(s); }

Backend be(std::string_view addr, std::uint16_t port, bool local = false, bool term = false,
           Protocol p = Protocol::TCP) {
  return Backend{ip(addr), port, p, local, term};
}

const char* kService = R"({
  "metadata": {"namespace": "shop", "name": "web"},
  "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
           "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                     {"name": "dns", "port": 53, "protocol": "UDP"}]}
})";

const char* kSlices[] = {
    R"({"metadata": {"namespace": "shop", "name": "web-a",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                  {"name": "dns", "port": 5353, "protocol": "UDP"}],
        "endpoints": [
          {"addresses": ["10.244.1.5"], "conditions": {"ready": true}, "nodeName": "n1"},
          {"addresses": ["10.244.2.5"], "conditions": {"ready": false, "serving": true,
                                                       "terminating": true}, "nodeName": "n2"},
          {"addresses": ["10.244.2.6"], "conditions": {}, "nodeName": "n2"},
          {"addresses": ["10.244.2.7"], "conditions": {"ready": false}, "nodeName": "n1"}]})",
    // The same endpoint again in a second slice (slice churn) and one of another service.
    R"({"metadata": {"namespace": "shop", "name": "web-b",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": true},
                       "nodeName": "n1"}]})",
    R"({"metadata": {"namespace": "shop", "name": "other",
                     "labels": {"kubernetes.io/service-name": "other"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 9999}],
        "endpoints": [{"addresses": ["10.244.9.9"]}]})",
    R"({"metadata": {"namespace": "shop", "name": "web-fqdn",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "FQDN", "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": ["example.com"]}]})",
};

std::vector<json::value> slices() {
  std::vector<json::value> v;
  for (const char* s : kSlices) v.push_back(parse(s));
  return v;
}

TEST(ServiceDesc, ClusterIpReadyEndpointsByPortNameAndLocality) {
  auto sl = slices();
  auto d = service_desc_from_json(parse(kService), sl, "n1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->key, "shop/web");
  ASSERT_EQ(d->ports.size(), 2u);
  const ServicePort& http = d->ports[0];
  EXPECT_EQ(http.name, "http");
  ASSERT_EQ(http.frontends.size(), 1u);
  EXPECT_EQ(http.frontends[0],
            (Frontend{FrontendKind::ClusterIP, ip("10.96.0.10"), 80, Protocol::TCP}));
  // Ready (explicit or defaulted) endpoints, deduplicated; not the terminating or unready ones.
  EXPECT_EQ(http.cluster_backends,
            (std::vector<Backend>{be("10.244.1.5", 8080, true), be("10.244.2.6", 8080)}));
  EXPECT_EQ(http.local_backends, (std::vector<Backend>{be("10.244.1.5", 8080, true)}));
  const ServicePort& dns = d->ports[1];
  EXPECT_EQ(dns.proto, Protocol::UDP);
  EXPECT_EQ(dns.cluster_backends.size(), 2u);
  EXPECT_EQ(dns.cluster_backends[0].port, 5353);
  EXPECT_EQ(dns.cluster_backends[0].proto, Protocol::UDP);
  EXPECT_EQ(d->affinity_timeout_s, 0u);
  EXPECT_FALSE(d->external_local);
  EXPECT_FALSE(d->internal_local);
}

TEST(ServiceDesc, FallsBackToServingTerminatingWhenNothingIsReady) {
  auto slice = parse(R"({"metadata": {"namespace": "shop", "name": "s",
      "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4",
      "ports": [{"name": "http", "port": 8080}],
      "endpoints": [
        {"addresses": ["10.244.1.1"], "nodeName": "n1",
         "conditions": {"ready": false, "serving": true, "terminating": true}},
        {"addresses": ["10.244.1.2"], "nodeName": "n2",
         "conditions": {"ready": false, "serving": false, "terminating": true}},
        {"addresses": ["10.244.1.3"], "nodeName": "n2", "conditions": {"ready": false}}]})");
  std::vector<json::value> sl{slice};
  auto d = service_desc_from_json(parse(kService), sl, "n1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->ports[0].cluster_backends,
            (std::vector<Backend>{be("10.244.1.1", 8080, true, true)}));
  EXPECT_EQ(d->ports[0].local_backends, d->ports[0].cluster_backends);
  // The local set falls back independently: a ready remote endpoint does not stop it.
  auto slice2 = parse(R"({"metadata": {"namespace": "shop", "name": "s2",
      "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4",
      "ports": [{"name": "http", "port": 8080}],
      "endpoints": [{"addresses": ["10.244.2.9"], "nodeName": "n2"}]})");
  sl.push_back(slice2);
  d = service_desc_from_json(parse(kService), sl, "n1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->ports[0].cluster_backends, (std::vector<Backend>{be("10.244.2.9", 8080)}));
  EXPECT_EQ(d->ports[0].local_backends, (std::vector<Backend>{be("10.244.1.1", 8080, true, true)}));
}

TEST(ServiceDesc, HeadlessAndExternalNameAreNotBalanced) {
  std::vector<json::value> none;
  EXPECT_FALSE(
      service_desc_from_json(parse(R"({"metadata": {"name": "h"}, "spec": {"clusterIP": "None",
                "ports": [{"port": 80}]}})"),
                             none, "n1"));
  EXPECT_FALSE(
      service_desc_from_json(parse(R"({"metadata": {"name": "h"}, "spec": {"clusterIPs": ["None"],
                "ports": [{"port": 80}]}})"),
                             none, "n1"));
  EXPECT_FALSE(
      service_desc_from_json(parse(R"({"metadata": {"name": "e"}, "spec": {"type": "ExternalName",
                "externalName": "example.com"}})"),
                             none, "n1"));
}

TEST(ServiceDesc, NodePortLoadBalancerExternalIpsDualStackAndPolicies) {
  auto svc = parse(R"({
    "metadata": {"namespace": "default", "name": "lb"},
    "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.20", "fd00::20"],
             "ipFamilies": ["IPv4", "IPv6"], "externalIPs": ["203.0.113.7", "bogus"],
             "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
             "sessionAffinity": "ClientIP",
             "ports": [{"port": 443, "nodePort": 30443}]},
    "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"},
                                            {"ip": "198.51.100.2", "ipMode": "Proxy"},
                                            {"hostname": "lb.example.com"}]}}})");
  auto slice6 = parse(R"({"metadata": {"namespace": "default", "name": "lb-6",
      "labels": {"kubernetes.io/service-name": "lb"}}, "addressType": "IPv6",
      "ports": [{"port": 8443}], "endpoints": [{"addresses": ["fd00:244::5"]}]})");
  std::vector<json::value> sl{slice6};
  auto d = service_desc_from_json(svc, sl, "n1");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->ports.size(), 1u);
  std::vector<Frontend> want{
      {FrontendKind::ClusterIP, ip("10.96.0.20"), 443, Protocol::TCP},
      {FrontendKind::ClusterIP, ip("fd00::20"), 443, Protocol::TCP},
      {FrontendKind::ExternalIP, ip("203.0.113.7"), 443, Protocol::TCP},
      {FrontendKind::LoadBalancer, ip("198.51.100.1"), 443, Protocol::TCP},
      {FrontendKind::NodePort, IpAddr::any_v4(), 30443, Protocol::TCP},
      {FrontendKind::NodePort, IpAddr::any_v6(), 30443, Protocol::TCP},
  };
  EXPECT_EQ(d->ports[0].frontends, want);
  EXPECT_EQ(d->ports[0].cluster_backends, (std::vector<Backend>{be("fd00:244::5", 8443)}));
  EXPECT_TRUE(d->external_local);
  EXPECT_TRUE(d->internal_local);
  EXPECT_EQ(d->affinity_timeout_s, kDefaultAffinityTimeoutSeconds);

  auto custom = parse(R"({"metadata": {"name": "a"}, "spec": {"clusterIP": "10.96.0.1",
      "sessionAffinity": "ClientIP",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
      "ports": [{"port": 80, "nodePort": 30080}]}})");
  d = service_desc_from_json(custom, {}, "n1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->key, "default/a");
  EXPECT_EQ(d->affinity_timeout_s, 60u);
  // A ClusterIP service has no NodePort frontend even if a nodePort is set.
  EXPECT_EQ(d->ports[0].frontends.size(), 1u);
}

TEST(ServiceDesc, MalformedInputIsSkippedNotFatal) {
  std::vector<json::value> sl{
      parse(R"({"metadata": {"labels": {"kubernetes.io/service-name": "x"}},
                "addressType": "IPv4", "ports": "nope", "endpoints": [1, "a", {}]})"),
      parse(R"({"metadata": {"labels": {"kubernetes.io/service-name": "x"}},
                "addressType": "IPv4", "ports": [{"port": 70000}, {"port": 81}],
                "endpoints": [{"addresses": []}, {"addresses": ["300.1.1.1"]},
                              {"addresses": [7]}, {"addresses": ["10.0.0.1"],
                               "conditions": {"ready": "yes"}}]})"),
      parse("[]"),
  };
  auto d =
      service_desc_from_json(parse(R"({"metadata": {"name": "x"}, "spec": {"clusterIP": "banana",
                "ports": [{"port": "80"}, {"port": 0}, {"port": 80, "protocol": "ICMP"}, 5]}})"),
                             sl, "n1");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->ports.size(), 1u);              // only {"port": 80} (unknown protocol read as TCP)
  EXPECT_TRUE(d->ports[0].frontends.empty());  // no valid cluster IP
  EXPECT_EQ(d->ports[0].cluster_backends, (std::vector<Backend>{be("10.0.0.1", 81)}));
  EXPECT_FALSE(service_desc_from_json(parse("42"), sl, "n1"));
  EXPECT_FALSE(service_desc_from_json(parse(R"({"spec": {}})"), sl, "n1"));
}

TEST(IpAddrTest, ParsePrintAndFamilies) {
  auto a = IpAddr::parse("10.96.0.1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->to_string(), "10.96.0.1");
  EXPECT_EQ(*a, IpAddr::v4(0x0a600001));
  auto b = IpAddr::parse("fd00::1");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->is_v4());
  EXPECT_EQ(b->to_string(), "fd00::1");
  EXPECT_TRUE(IpAddr::any_v4().is_any());
  EXPECT_TRUE(IpAddr::any_v6().is_any());
  EXPECT_NE(IpAddr::any_v4(), IpAddr::any_v6());
  EXPECT_FALSE(IpAddr::parse("10.0.0.1:80"));
  EXPECT_FALSE(IpAddr::parse(""));
  EXPECT_FALSE(IpAddr::parse(std::string(100, '1')));
}

}  // namespace
}  // namespace podwarp::noded::lb
