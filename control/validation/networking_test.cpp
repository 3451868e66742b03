// networking.k8s.io/v1 defaulting and validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"
#include "validation/validation.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

TEST(NetworkPolicy, Defaults) {
  json::value np = J(R"({"metadata":{"name":"db","namespace":"default"},"spec":{
      "podSelector":{"matchLabels":{"app":"db"}},
      "ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"web"}}}],"ports":[{"port":5432}]}],
      "egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8"}}]}]}})");
  apply_defaults(R("networking.k8s.io", "NetworkPolicy"), np);
  EXPECT_EQ(np.at("spec").at("policyTypes"), J(R"(["Ingress","Egress"])"));
  EXPECT_EQ(np.at("spec").at("ingress").at(0).at("ports").at(0),
            J(R"({"port":5432,"protocol":"TCP"})"));
  EXPECT_THAT(texts(validate(R("networking.k8s.io", "NetworkPolicy"), np, nullptr)), IsEmpty());
  json::value ingress_only =
      J(R"({"metadata":{"name":"deny","namespace":"default"},"spec":{"podSelector":{}}})");
  apply_defaults(R("networking.k8s.io", "NetworkPolicy"), ingress_only);
  EXPECT_EQ(ingress_only.at("spec").at("policyTypes"), J(R"(["Ingress"])"));
}

TEST(NetworkPolicy, Messages) {
  EXPECT_THAT(
      create("networking.k8s.io", "NetworkPolicy",
             R"({"metadata":{"name":"np","namespace":"default"},"spec":{
          "podSelector":{},
          "ingress":[{"from":[{},{"ipBlock":{"cidr":"10.0.0.0/8","except":["192.168.0.0/16"]},"podSelector":{}}],
                      "ports":[{"protocol":"ICMP","port":80,"endPort":70}]}],
          "policyTypes":["Ingress","Both"]}})"),
      ElementsAre(
          "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: "
          "\"TCP\", \"UDP\", \"SCTP\"",
          "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal "
          "to `port`",
          "spec.ingress[0].from[0]: Required value: must specify a peer",
          "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"192.168.0.0/16\": must "
          "be a strict subset of `cidr`",
          "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
          "spec.policyTypes[1]: Unsupported value: \"Both\": supported values: \"Ingress\", "
          "\"Egress\""));
}

std::string ingress(std::string_view spec) {
  return R"({"metadata":{"name":"web","namespace":"default"},"spec":)" + std::string(spec) + "}";
}

TEST(Ingress, ValidRules) {
  EXPECT_THAT(create("networking.k8s.io", "Ingress", ingress(R"({"ingressClassName":"nginx",
      "tls":[{"hosts":["*.example.com"],"secretName":"example-tls"}],
      "rules":[{"host":"www.example.com","http":{"paths":[
        {"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}},
        {"path":"/api","pathType":"Exact","backend":{"service":{"name":"api","port":{"name":"http"}}}}]}}]})")),
              IsEmpty());
}

TEST(Ingress, Messages) {
  EXPECT_THAT(create("networking.k8s.io", "Ingress", ingress("{}")),
              ElementsAre("spec: Invalid value: []networking.IngressRule(nil): either "
                          "`defaultBackend` or `rules` must be specified"));
  EXPECT_THAT(
      create("networking.k8s.io", "Ingress",
             ingress(R"({"rules":[{"host":"10.0.0.1","http":{"paths":[
        {"path":"api","backend":{"service":{"name":"api","port":{"number":80}}}},
        {"path":"api//v1","pathType":"Prefix","backend":{"service":{"name":"api"}}},
        {"path":"/x","pathType":"Regex","backend":{"service":{"name":"Api","port":{"number":80}}}}]}}]})")),
      ElementsAre("spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not "
                  "an IP address",
                  "spec.rules[0].http.paths[0].pathType: Required value: pathType must be "
                  "specified",
                  "spec.rules[0].http.paths[1].path: Invalid value: \"api//v1\": must be an "
                  "absolute path",
                  "spec.rules[0].http.paths[1].path: Invalid value: \"api//v1\": must not "
                  "contain '//'",
                  "spec.rules[0].http.paths[1].backend: Required value: port name or number "
                  "is required",
                  "spec.rules[0].http.paths[2].pathType: Unsupported value: \"Regex\": "
                  "supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
                  cat("spec.rules[0].http.paths[2].backend.service.name: Invalid value: "
                      "\"Api\": ",
                      kDns1035Msg)));
}

}  // namespace
}  // namespace podwarp::validation
