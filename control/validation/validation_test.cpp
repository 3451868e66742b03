// Dispatcher-level behaviour: idempotent defaults for every kind, unknown kinds, non-objects.
#include "validation/validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/json_fields.h"
#include "validation/test_util.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

struct Manifest {
  std::string group, kind, text;
};

class Defaults : public ::testing::TestWithParam<Manifest> {};

// apply_defaults runs on create and again on every update: a second pass changes nothing, and
// the defaulted manifests are valid.
TEST_P(Defaults, IdempotentAndValid) {
  const Manifest& m = GetParam();
  json::value once = J(m.text);
  apply_defaults(R(m.group, m.kind), once);
  json::value twice = once;
  apply_defaults(R(m.group, m.kind), twice);
  EXPECT_EQ(once, twice) << json::serialize(once);
  EXPECT_THAT(texts(validate(R(m.group, m.kind), once, nullptr)), IsEmpty());
  json::value stored = once;
  stored.as_object()["metadata"].as_object()["resourceVersion"] = "1";
  json::value updated = stored;
  apply_defaults(R(m.group, m.kind), updated);
  EXPECT_EQ(updated, stored);
  EXPECT_THAT(texts(validate(R(m.group, m.kind), updated, &stored)), IsEmpty());
}

constexpr std::string_view kTemplate =
    R"("template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx","ports":[{"containerPort":80}],"readinessProbe":{"httpGet":{"path":"/healthz","port":80}}}],"volumes":[{"name":"tmp","emptyDir":{}}]}})";

INSTANTIATE_TEST_SUITE_P(
    Kinds, Defaults,
    ::testing::Values(
        Manifest{"", "Namespace", R"({"metadata":{"name":"team-a"}})"},
        Manifest{
            "", "Pod",
            R"({"metadata":{"name":"p","namespace":"default"},"spec":{"hostNetwork":true,"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":8080}],"env":[{"name":"NODE","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}}]}],"volumes":[{"name":"s","secret":{"secretName":"s"}},{"name":"p","projected":{"sources":[{"serviceAccountToken":{"path":"token"}}]}}]}})"},
        Manifest{
            "", "Node",
            R"({"metadata":{"name":"node-1","labels":{"kubernetes.io/hostname":"node-1"}},"spec":{"podCIDR":"10.244.0.0/24","podCIDRs":["10.244.0.0/24"]},"status":{"capacity":{"cpu":"2","memory":"4Gi"}}})"},
        Manifest{
            "", "Service",
            R"({"metadata":{"name":"web","namespace":"default"},"spec":{"type":"NodePort","selector":{"app":"web"},"ports":[{"port":80,"nodePort":30080}]}})"},
        Manifest{
            "", "Endpoints",
            R"({"metadata":{"name":"web","namespace":"default"},"subsets":[{"addresses":[{"ip":"10.0.0.9"}],"ports":[{"port":80}]}]})"},
        Manifest{
            "", "ConfigMap",
            R"({"metadata":{"name":"cfg","namespace":"default"},"data":{"app.properties":"a=b"}})"},
        Manifest{"", "Secret",
                 R"({"metadata":{"name":"s","namespace":"default"},"stringData":{"token":"abc"}})"},
        Manifest{"", "ServiceAccount", R"({"metadata":{"name":"sa","namespace":"default"}})"},
        Manifest{
            "", "Event",
            R"({"metadata":{"name":"p.1","namespace":"default"},"involvedObject":{"kind":"Pod","name":"p","namespace":"default"},"reason":"Pulled","type":"Normal"})"},
        Manifest{
            "apps", "Deployment",
            R"({"metadata":{"name":"web","namespace":"default"},"spec":{"selector":{"matchLabels":{"app":"web"}},)" +
                std::string(kTemplate) + "}}"},
        Manifest{
            "apps", "ReplicaSet",
            R"({"metadata":{"name":"web","namespace":"default"},"spec":{"selector":{"matchLabels":{"app":"web"}},)" +
                std::string(kTemplate) + "}}"},
        Manifest{
            "apps", "DaemonSet",
            R"({"metadata":{"name":"web","namespace":"default"},"spec":{"selector":{"matchLabels":{"app":"web"}},)" +
                std::string(kTemplate) + "}}"},
        Manifest{
            "apps", "StatefulSet",
            R"({"metadata":{"name":"web","namespace":"default"},"spec":{"serviceName":"web","selector":{"matchLabels":{"app":"web"}},)" +
                std::string(kTemplate) + "}}"},
        Manifest{
            "batch", "Job",
            R"({"metadata":{"name":"j","namespace":"default","uid":"3f0b"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}})"},
        Manifest{
            "batch", "CronJob",
            R"({"metadata":{"name":"c","namespace":"default"},"spec":{"schedule":"@daily","timeZone":"Etc/UTC","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"c","image":"busybox"}]}}}}}})"},
        Manifest{
            "coordination.k8s.io", "Lease",
            R"({"metadata":{"name":"l","namespace":"default"},"spec":{"holderIdentity":"a","leaseDurationSeconds":10}})"},
        Manifest{
            "discovery.k8s.io", "EndpointSlice",
            R"({"metadata":{"name":"web-x","namespace":"default","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.9"]}],"ports":[{"port":80}]})"},
        Manifest{
            "networking.k8s.io", "NetworkPolicy",
            R"({"metadata":{"name":"n","namespace":"default"},"spec":{"podSelector":{},"egress":[{"ports":[{"port":53}]}]}})"},
        Manifest{
            "networking.k8s.io", "Ingress",
            R"({"metadata":{"name":"i","namespace":"default"},"spec":{"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}})"},
        Manifest{
            "policy", "PodDisruptionBudget",
            R"({"metadata":{"name":"pdb","namespace":"default"},"spec":{"maxUnavailable":1,"selector":{"matchLabels":{"app":"web"}}}})"}),
    [](const auto& info) { return info.param.kind; });

TEST(Dispatch, UnknownKindsGetMetadataRules) {
  api::Resource r;
  r.group = "example.com";
  r.version = "v1";
  r.kind = "Widget";
  r.namespaced = true;
  json::value v = J(R"({"metadata":{"name":"Bad_Name","namespace":"default"},"spec":{"x":1}})");
  apply_defaults(r, v);
  EXPECT_EQ(v, J(R"({"metadata":{"name":"Bad_Name","namespace":"default"},"spec":{"x":1}})"));
  EXPECT_THAT(texts(validate(r, v, nullptr)),
              ElementsAre(cat("metadata.name: Invalid value: \"Bad_Name\": ", kSubdomainMsg)));
  EXPECT_EQ(invalid_message(r, "Bad_Name", validate(r, v, nullptr)),
            cat("Widget.example.com \"Bad_Name\" is invalid: metadata.name: Invalid value: "
                "\"Bad_Name\": ",
                kSubdomainMsg));
}

TEST(Dispatch, NonObjects) {
  json::value v = J("[1,2]");
  apply_defaults(R("", "Pod"), v);
  EXPECT_EQ(v, J("[1,2]"));
  EXPECT_THAT(texts(validate(R("", "Pod"), v, nullptr)),
              ElementsAre("[]: Invalid value: [1,2]: must be a JSON object"));
}

TEST(JsonFields, IntegerOfADouble) {
  // Whole doubles in the int64 range read as integers; others (1e300 would have been an
  // out-of-range conversion, undefined behavior) do not.
  const json::value three(3.0), min(-0x1p63);
  EXPECT_EQ(integer(&three), 3);
  EXPECT_EQ(integer(&min), INT64_MIN);
  for (double d : {1.5, 1e300, -1e300, 0x1p63, 9.3e18}) {
    const json::value v(d);
    EXPECT_FALSE(integer(&v).has_value()) << d;
  }
}

}  // namespace
}  // namespace podwarp::validation
