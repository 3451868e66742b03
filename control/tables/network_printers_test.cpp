// Service, Endpoints, EndpointSlice, Ingress and NetworkPolicy rows against what
// `kubectl get -o wide` prints. The clock reads 2025-01-15T12:00:00Z.
#include <gtest/gtest.h>

#include "tables/test_util.h"

namespace podwarp::tables {
namespace {

using testing::cells;
using testing::parse;

TEST(NetworkPrinters, ClusterIPService) {
  // NAME       TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)                  AGE   SELECTOR
  // kube-dns   ClusterIP   10.96.0.10   <none>        53/UDP,53/TCP,9153/TCP   2d k8s-app=kube-dns
  EXPECT_EQ(cells("", "Service", R"({
    "metadata": {"name": "kube-dns", "namespace": "kube-system",
                 "creationTimestamp": "2025-01-13T12:00:00Z"},
    "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
             "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                       {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                       {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}],
             "selector": {"k8s-app": "kube-dns"}}
  })"),
            parse(R"(["kube-dns", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP,9153/TCP",
                      "2d", "k8s-app=kube-dns"])"));
}

TEST(NetworkPrinters, NodePortService) {
  EXPECT_EQ(cells("", "Service", R"({
    "metadata": {"name": "web", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "spec": {"type": "NodePort", "clusterIP": "10.96.120.7", "clusterIPs": ["10.96.120.7"],
             "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}],
             "selector": {"app": "web", "tier": "frontend"}}
  })"),
            parse(R"(["web", "NodePort", "10.96.120.7", "<none>", "80:30080/TCP", "5m",
                      "app=web,tier=frontend"])"));
}

TEST(NetworkPrinters, ServiceDefaults) {
  // type ClusterIP and protocol TCP are API defaults; clusterIPs is defaulted from clusterIP.
  EXPECT_EQ(cells("", "Service", R"({
    "metadata": {"name": "kubernetes", "creationTimestamp": "2025-01-13T12:00:00Z"},
    "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443,
                                                    "targetPort": 6443}]}
  })"),
            parse(R"(["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP", "2d",
                      "<none>"])"));
  EXPECT_EQ(cells("", "Service", R"({"metadata": {"name": "s"},
    "spec": {"type": "", "ports": [{"port": 80, "protocol": ""}]}})"),
            parse(R"(["s", "ClusterIP", "<none>", "<none>", "80/TCP", "<unknown>", "<none>"])"));
}

TEST(NetworkPrinters, HeadlessAndExternalNameServices) {
  EXPECT_EQ(cells("", "Service", R"({"metadata": {"name": "db"},
    "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
             "ports": [{"port": 5432, "protocol": "TCP"}], "selector": {"app": "db"}}})"),
            parse(R"(["db", "ClusterIP", "None", "<none>", "5432/TCP", "<unknown>",
                      "app=db"])"));
  EXPECT_EQ(cells("", "Service", R"({"metadata": {"name": "ext"},
    "spec": {"type": "ExternalName", "externalName": "db.example.com"}})"),
            parse(R"(["ext", "ExternalName", "<none>", "db.example.com", "<none>", "<unknown>",
                      "<none>"])"));
}

TEST(NetworkPrinters, LoadBalancerService) {
  auto external_ip = [](std::string_view svc) {
    return std::string(cells("", "Service", svc).as_array()[3].as_string());
  };
  EXPECT_EQ(external_ip(R"({"metadata": {"name": "lb"},
                          "spec": {"type": "LoadBalancer", "clusterIP": "10.96.5.5"}})"),
            "<pending>");
  // Sorted and deduplicated; never clipped, as the server prints wide.
  EXPECT_EQ(external_ip(R"({"metadata": {"name": "lb"},
                          "spec": {"type": "LoadBalancer"},
                          "status": {"loadBalancer": {"ingress": [
                            {"hostname": "a1b2c3.elb.us-east-1.amazonaws.com"},
                            {"ip": "203.0.113.10"}, {"ip": "203.0.113.10"}]}}})"),
            "203.0.113.10,a1b2c3.elb.us-east-1.amazonaws.com");
  EXPECT_EQ(external_ip(R"({"metadata": {"name": "lb"},
                          "spec": {"type": "LoadBalancer", "externalIPs": ["198.51.100.1"]},
                          "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}})"),
            "203.0.113.10,198.51.100.1");
  EXPECT_EQ(external_ip(R"({"metadata": {"name": "lb"},
                          "spec": {"type": "LoadBalancer", "externalIPs": ["198.51.100.1"]}})"),
            "198.51.100.1");
  EXPECT_EQ(external_ip(R"({"metadata": {"name": "c"},
                          "spec": {"type": "ClusterIP", "externalIPs": ["1.2.3.4", "5.6.7.8"]}})"),
            "1.2.3.4,5.6.7.8");
}

TEST(NetworkPrinters, Endpoints) {
  // NAME   ENDPOINTS                     AGE
  // web    10.244.1.5:80,10.244.2.7:80   5m
  EXPECT_EQ(cells("", "Endpoints", R"({
    "metadata": {"name": "web", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "subsets": [{"addresses": [{"ip": "10.244.1.5", "nodeName": "node-1"},
                               {"ip": "10.244.2.7", "nodeName": "node-2"}],
                 "notReadyAddresses": [{"ip": "10.244.3.9"}],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]
  })"),
            parse(R"(["web", "10.244.1.5:80,10.244.2.7:80", "5m"])"));
}

TEST(NetworkPrinters, EndpointsMoreThanThree) {
  auto endpoints = [](std::string_view ep) {
    return std::string(cells("", "Endpoints", ep).as_array()[1].as_string());
  };
  EXPECT_EQ(endpoints(R"({"metadata": {"name": "e"}, "subsets": [{
    "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"},
                  {"ip": "10.0.0.5"}],
    "ports": [{"port": 8080}]}]})"),
            "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 2 more...");
  // Every port of every address counts.
  EXPECT_EQ(endpoints(R"({"metadata": {"name": "e"}, "subsets": [{
    "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
    "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}]})"),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...");
  // Headless without ports, and IPv6.
  EXPECT_EQ(endpoints(R"({"metadata": {"name": "e"}, "subsets": [
    {"addresses": [{"ip": "10.0.0.1"}]},
    {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]})"),
            "10.0.0.1,[fd00::1]:53");
  EXPECT_EQ(endpoints(R"({"metadata": {"name": "e"}})"), "<none>");
  EXPECT_EQ(endpoints(R"({"metadata": {"name": "e"}, "subsets": [
    {"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]})"),
            "");
}

TEST(NetworkPrinters, EndpointSlice) {
  // NAME        ADDRESSTYPE   PORTS   ENDPOINTS               AGE
  // web-abc12   IPv4          80      10.244.1.5,10.244.2.7   5m
  EXPECT_EQ(cells("discovery.k8s.io", "EndpointSlice", R"({
    "metadata": {"name": "web-abc12", "creationTimestamp": "2025-01-15T11:55:00Z",
                 "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": true}},
                  {"addresses": ["10.244.2.7"], "conditions": {"ready": true}}],
    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]
  })"),
            parse(R"(["web-abc12", "IPv4", "80", "10.244.1.5,10.244.2.7", "5m"])"));
}

TEST(NetworkPrinters, EndpointSliceEdgeCases) {
  EXPECT_EQ(cells("discovery.k8s.io", "EndpointSlice", R"({
    "metadata": {"name": "s"}, "addressType": "IPv6"})"),
            parse(R"(["s", "IPv6", "<unset>", "<unset>", "<unknown>"])"));
  EXPECT_EQ(
      cells("discovery.k8s.io", "EndpointSlice", R"({
    "metadata": {"name": "s"}, "addressType": "IPv4",
    "ports": [{"name": "a", "port": 1}, {"name": "named", "port": null}, {"port": null},
              {"port": 4}, {"port": 5}],
    "endpoints": [{"addresses": ["10.0.0.1", "10.0.0.2"]}, {"addresses": ["10.0.0.3"]},
                  {"addresses": ["10.0.0.4"]}]})"),
      parse(R"(["s", "IPv4", "1,named,* + 2 more...", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
                      "<unknown>"])"));
}

TEST(NetworkPrinters, Ingress) {
  // NAME   CLASS   HOSTS                             ADDRESS        PORTS     AGE
  // web    nginx   foo.example.com,bar.example.com   192.168.49.2   80, 443   5m
  EXPECT_EQ(cells("networking.k8s.io", "Ingress", R"({
    "metadata": {"name": "web", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "spec": {"ingressClassName": "nginx",
             "tls": [{"hosts": ["foo.example.com"], "secretName": "foo-tls"}],
             "rules": [{"host": "foo.example.com", "http": {"paths": []}},
                       {"host": "bar.example.com", "http": {"paths": []}}]},
    "status": {"loadBalancer": {"ingress": [{"ip": "192.168.49.2"}]}}
  })"),
            parse(R"(["web", "nginx", "foo.example.com,bar.example.com", "192.168.49.2",
                      "80, 443", "5m"])"));
}

TEST(NetworkPrinters, IngressWithoutClassHostsOrAddress) {
  EXPECT_EQ(cells("networking.k8s.io", "Ingress", R"({
    "metadata": {"name": "catch-all", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
             "rules": [{"http": {"paths": []}}]}
  })"),
            parse(R"(["catch-all", "<none>", "*", "", "80", "5m"])"));
}

TEST(NetworkPrinters, IngressManyHosts) {
  EXPECT_EQ(cells("networking.k8s.io", "Ingress", R"({"metadata": {"name": "i"},
    "spec": {"rules": [{"host": "a"}, {"host": "b"}, {}, {"host": "c"}, {"host": "d"}]}})")
                .as_array()[2],
            "a,b,c + 2 more...");
  // A fourth rule without a host still counts as "more".
  EXPECT_EQ(cells("networking.k8s.io", "Ingress", R"({"metadata": {"name": "i"},
    "spec": {"rules": [{"host": "a"}, {"host": "b"}, {"host": "c"}, {}]}})")
                .as_array()[2],
            "a,b,c + 1 more...");
}

TEST(NetworkPrinters, NetworkPolicy) {
  // NAME               POD-SELECTOR   AGE
  // default-deny       <none>         5m
  // db-from-backend    role=db        5m
  EXPECT_EQ(cells("networking.k8s.io", "NetworkPolicy", R"({
    "metadata": {"name": "default-deny", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})"),
            parse(R"(["default-deny", "<none>", "5m"])"));
  EXPECT_EQ(cells("networking.k8s.io", "NetworkPolicy", R"({
    "metadata": {"name": "db-from-backend", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "spec": {"podSelector": {"matchLabels": {"role": "db"},
                             "matchExpressions": [{"key": "env", "operator": "NotIn",
                                                   "values": ["dev"]},
                                                  {"key": "legacy", "operator": "DoesNotExist"}]},
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "backend"}}}]}]}})"),
            parse(R"(["db-from-backend", "env notin (dev),!legacy,role=db", "5m"])"));
  EXPECT_EQ(cells("networking.k8s.io", "NetworkPolicy", R"({"metadata": {"name": "n"}})"),
            parse(R"(["n", "<none>", "<unknown>"])"));
}

}  // namespace
}  // namespace podwarp::tables
