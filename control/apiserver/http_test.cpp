// Request routing and content negotiation, as upstream's RequestInfo and Accept handling.
#include <gtest/gtest.h>

#include "apiserver/http.h"
#include "apiserver/negotiate.h"
#include "apiserver/service_allocator.h"

namespace podwarp::apiserver {
namespace {

struct InfoCase {
  std::string method;
  std::string path;
  std::string query_watch;
  std::string verb, group, version, ns, resource, name, sub;
};

TEST(RequestInfo, SplitsPathsAsUpstream) {
  const InfoCase cases[] = {
      {"GET", "/api/v1/pods", "", "list", "", "v1", "", "pods", "", ""},
      {"GET", "/api/v1/namespaces/default/pods", "", "list", "", "v1", "default", "pods", "", ""},
      {"GET", "/api/v1/namespaces/default/pods/p", "", "get", "", "v1", "default", "pods", "p", ""},
      {"PUT", "/api/v1/namespaces/default/pods/p/status", "", "update", "", "v1", "default", "pods", "p", "status"},
      {"GET", "/api/v1/namespaces/default/pods", "true", "watch", "", "v1", "default", "pods", "", ""},
      {"GET", "/api/v1/watch/namespaces/default/pods", "", "watch", "", "v1", "default", "pods", "", ""},
      {"GET", "/api/v1/namespaces", "", "list", "", "v1", "", "namespaces", "", ""},
      {"GET", "/api/v1/namespaces/kube-system", "", "get", "", "v1", "kube-system", "namespaces", "kube-system", ""},
      {"PUT", "/api/v1/namespaces/x/finalize", "", "update", "", "v1", "x", "namespaces", "x", "finalize"},
      {"PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale", "", "patch", "apps", "v1", "ns", "deployments", "web", "scale"},
      {"POST", "/apis/batch/v1/namespaces/ns/jobs", "", "create", "batch", "v1", "ns", "jobs", "", ""},
      {"DELETE", "/apis/batch/v1/namespaces/ns/jobs", "", "deletecollection", "batch", "v1", "ns", "jobs", "", ""},
      {"DELETE", "/apis/batch/v1/namespaces/ns/jobs/j", "", "delete", "batch", "v1", "ns", "jobs", "j", ""},
  };
  for (const InfoCase& c : cases) {
    Request req;
    req.method = c.method;
    req.path = c.path;
    if (!c.query_watch.empty()) req.query.emplace("watch", c.query_watch);
    ASSERT_TRUE(parse_request_info(req)) << c.path;
    const RequestInfo& i = req.info;
    EXPECT_EQ(i.verb, c.verb) << c.path;
    EXPECT_EQ(i.group, c.group) << c.path;
    EXPECT_EQ(i.version, c.version) << c.path;
    EXPECT_EQ(i.namespace_, c.ns) << c.path;
    EXPECT_EQ(i.resource, c.resource) << c.path;
    EXPECT_EQ(i.name, c.name) << c.path;
    EXPECT_EQ(i.subresource, c.sub) << c.path;
    EXPECT_NE(i.resource_info, nullptr) << c.path;
  }
}

TEST(RequestInfo, DiscoveryPathsAreNotResources) {
  for (std::string path : {"/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version",
                           "/api/v1/namespaces/a/pods/b/c/d"}) {
    Request req;
    req.method = "GET";
    req.path = path;
    EXPECT_FALSE(parse_request_info(req)) << path;
  }
}

TEST(RequestInfo, WatchFlagIsParsedLikeGoParseBool) {
  for (std::string v : {"1", "t", "T", "true", "TRUE", "True"}) {
    Request req;
    req.method = "GET";
    req.path = "/api/v1/pods";
    req.query.emplace("watch", v);
    ASSERT_TRUE(parse_request_info(req));
    EXPECT_EQ(req.info.verb, "watch") << v;
  }
  Request req;
  req.method = "GET";
  req.path = "/api/v1/pods";
  req.query.emplace("watch", "false");
  ASSERT_TRUE(parse_request_info(req));
  EXPECT_EQ(req.info.verb, "list");
}

TEST(Negotiate, PicksTheFirstRepresentationWeServe) {
  EXPECT_EQ(negotiate(""), Format::kJson);
  EXPECT_EQ(negotiate("application/json"), Format::kJson);
  EXPECT_EQ(negotiate("*/*"), Format::kJson);
  EXPECT_EQ(negotiate("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;"
                      "v=v1beta1;g=meta.k8s.io,application/json"),
            Format::kTable);
  EXPECT_EQ(negotiate("application/vnd.kubernetes.protobuf,application/json"), Format::kJson);
  EXPECT_EQ(negotiate("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
            Format::kPartialMetadata);
  EXPECT_EQ(negotiate("application/vnd.kubernetes.protobuf"), Format::kUnacceptable);
  EXPECT_EQ(negotiate("application/json;as=Scale;g=autoscaling"), Format::kUnacceptable);
}

TEST(Ipv4Range, ParsesAndContains) {
  auto r = Ipv4Range::parse("10.96.0.0/12");
  ASSERT_TRUE(r);
  EXPECT_EQ(Ipv4Range::format(r->base), "10.96.0.0");
  EXPECT_EQ(r->size(), 1u << 20);
  EXPECT_TRUE(r->contains(*Ipv4Range::parse_ip("10.111.255.254")));
  EXPECT_FALSE(r->contains(*Ipv4Range::parse_ip("10.112.0.1")));
  EXPECT_FALSE(Ipv4Range::parse("10.96.0.0"));
  EXPECT_FALSE(Ipv4Range::parse("10.96.0.0/33"));
  EXPECT_FALSE(Ipv4Range::parse("bogus/12"));
}

}  // namespace
}  // namespace podwarp::apiserver
