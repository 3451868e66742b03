// discovery.k8s.io/v1 EndpointSlice defaulting and validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"
#include "validation/validation.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

TEST(EndpointSlice, DefaultsAndAddresses) {
  json::value eps =
      J(R"({"metadata":{"name":"web-abc12","namespace":"default"},"addressType":"IPv4",
      "endpoints":[{"addresses":["10.1.2.3"],"conditions":{"ready":true},"nodeName":"node-1"}],
      "ports":[{"port":8080}]})");
  apply_defaults(R("discovery.k8s.io", "EndpointSlice"), eps);
  EXPECT_EQ(eps.at("ports"), J(R"([{"port":8080,"name":"","protocol":"TCP"}])"));
  EXPECT_THAT(texts(validate(R("discovery.k8s.io", "EndpointSlice"), eps, nullptr)), IsEmpty());
  EXPECT_THAT(
      create("discovery.k8s.io", "EndpointSlice", R"({"metadata":{"name":"s","namespace":"default"},
      "addressType":"IP","endpoints":[{"addresses":[]}]})"),
      ElementsAre(
          "addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
          "endpoints[0].addresses: Required value: must contain at least 1 address"));
  EXPECT_THAT(
      create("discovery.k8s.io", "EndpointSlice", R"({"metadata":{"name":"s","namespace":"default"},
      "addressType":"IPv4","endpoints":[{"addresses":["fd00::1"]}],"ports":[{"name":"http"},{"name":"http"}]})"),
      ElementsAre(
          "endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
          "ports[1].name: Duplicate value: \"http\""));
}

TEST(EndpointSlice, AddressTypeIsImmutable) {
  json::value old = J(R"({"metadata":{"name":"s","namespace":"default","resourceVersion":"2"},
      "addressType":"IPv4","endpoints":[]})");
  json::value now = old;
  now.as_object()["addressType"] = "IPv6";
  EXPECT_THAT(texts(validate(R("discovery.k8s.io", "EndpointSlice"), now, &old)),
              ElementsAre("addressType: Invalid value: \"IPv6\": field is immutable"));
}

}  // namespace
}  // namespace podwarp::validation
