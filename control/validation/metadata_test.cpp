// Object metadata rules, exercised through ConfigMap (namespaced) and Namespace (cluster scope),
// and the 422 message format.
#include "validation/metadata.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

struct MetaCase {
  std::string name;
  std::string metadata;  // JSON object
  std::vector<std::string> want;
};

class ConfigMapMetadata : public ::testing::TestWithParam<MetaCase> {};

TEST_P(ConfigMapMetadata, Create) {
  const MetaCase& c = GetParam();
  std::string doc = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":)" + c.metadata + "}";
  EXPECT_EQ(create("", "ConfigMap", doc), c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigMapMetadata,
    ::testing::Values(
        MetaCase{"valid", R"({"name":"app-config","namespace":"default"})", {}},
        MetaCase{"missing_name",
                 R"({"namespace":"default"})",
                 {"metadata.name: Required value: name or generateName is required"}},
        MetaCase{"generate_name",
                 R"({"generateName":"cfg-","namespace":"default"})",
                 {"metadata.name: Required value: name or generateName is required"}},
        MetaCase{"uppercase_name",
                 R"({"name":"App_Config","namespace":"default"})",
                 {cat("metadata.name: Invalid value: \"App_Config\": ", kSubdomainMsg)}},
        MetaCase{"missing_namespace", R"({"name":"a"})", {"metadata.namespace: Required value"}},
        MetaCase{"bad_namespace",
                 R"({"name":"a","namespace":"My.NS"})",
                 {cat("metadata.namespace: Invalid value: \"My.NS\": ", kLabelMsg)}},
        MetaCase{"bad_label_key",
                 R"({"name":"a","namespace":"default","labels":{"-app":"web"}})",
                 {cat("metadata.labels: Invalid value: \"-app\": ", kQualifiedNameMsg)}},
        MetaCase{"bad_label_value",
                 R"({"name":"a","namespace":"default","labels":{"app":"web server"}})",
                 {cat("metadata.labels: Invalid value: \"web server\": ", kLabelValueMsg)}},
        MetaCase{"annotation_key_case_insensitive",
                 R"({"name":"a","namespace":"default","annotations":{"Example.COM/Owner":"x"}})",
                 {}},
        MetaCase{"bad_annotation_key",
                 R"({"name":"a","namespace":"default","annotations":{"a b":"x"}})",
                 {cat("metadata.annotations: Invalid value: \"a b\": ", kQualifiedNameMsg)}},
        MetaCase{"negative_generation",
                 R"({"name":"a","namespace":"default","generation":-1})",
                 {"metadata.generation: Invalid value: -1: must be greater than or equal to 0"}},
        MetaCase{"finalizer_not_qualified",
                 R"({"name":"a","namespace":"default","finalizers":["custom"]})",
                 {"metadata.finalizers[0]: Invalid value: \"custom\": name is neither a standard "
                  "finalizer name nor is it fully qualified"}},
        MetaCase{
            "finalizers_conflict",
            R"({"name":"a","namespace":"default","finalizers":["orphan","foregroundDeletion"]})",
            {"metadata.finalizers: Invalid value: []string{\"orphan\", "
             "\"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be "
             "both set"}},
        MetaCase{
            "owner_reference_incomplete",
            R"({"name":"a","namespace":"default","ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs"}]})",
            {"metadata.ownerReferences.uid: Invalid value: \"\": must not be empty"}}),
    [](const auto& info) { return info.param.name; });

TEST(Metadata, AnnotationsTotalSize) {
  std::string big(262144, 'x');
  std::string doc =
      R"({"metadata":{"name":"a","namespace":"default","annotations":{"k":")" + big + R"("}}})";
  EXPECT_THAT(create("", "ConfigMap", doc),
              ElementsAre("metadata.annotations: Too long: must have at most 262144 bytes"));
}

TEST(Metadata, ClusterScopedRejectsNamespace) {
  EXPECT_THAT(create("", "Namespace", R"({"metadata":{"name":"team-a","namespace":"x"}})"),
              ElementsAre("metadata.namespace: Forbidden: not allowed on this type"));
}

TEST(Metadata, UpdateImmutables) {
  const char* before =
      R"({"metadata":{"name":"a","namespace":"default","uid":"u1","resourceVersion":"5",
          "creationTimestamp":"2024-05-01T10:00:00Z","generation":3}})";
  const char* after =
      R"({"metadata":{"name":"a","namespace":"default","uid":"u2","resourceVersion":"5",
          "creationTimestamp":"2024-05-02T10:00:00Z","generation":2}})";
  auto errs = update("", "ConfigMap", before, after);
  // rest.BeforeUpdate's generic checks and the kind's own both report, as upstream's causes do.
  std::vector<std::string> once = {
      "metadata.generation: Invalid value: 2: must not be decremented",
      "metadata.uid: Invalid value: \"u2\": field is immutable",
      "metadata.creationTimestamp: Invalid value: 2024-05-02 10:00:00 +0000 UTC: field is "
      "immutable"};
  std::vector<std::string> want = once;
  want.insert(want.end(), once.begin(), once.end());
  EXPECT_EQ(errs, want);
  json::value old = J(before);
  EXPECT_EQ(invalid_message(R("", "ConfigMap"), "a", validate(R("", "ConfigMap"), J(after), &old)),
            "ConfigMap \"a\" is invalid: [metadata.generation: Invalid value: 2: must not be "
            "decremented, metadata.uid: Invalid value: \"u2\": field is immutable, "
            "metadata.creationTimestamp: Invalid value: 2024-05-02 10:00:00 +0000 UTC: field is "
            "immutable]");
}

TEST(Metadata, UpdateRequiresResourceVersionAndSameName) {
  auto errs = update("", "ConfigMap",
                     R"({"metadata":{"name":"a","namespace":"default","resourceVersion":"1"}})",
                     R"({"metadata":{"name":"b","namespace":"default"}})");
  EXPECT_THAT(errs, ::testing::Contains("metadata.resourceVersion: Invalid value: \"\": must be "
                                        "specified for an update"));
  EXPECT_THAT(errs, ::testing::Contains("metadata.name: Invalid value: \"b\": field is immutable"));
}

TEST(Metadata, NoNewFinalizersWhileDeleting) {
  auto errs = update("", "ConfigMap",
                     R"({"metadata":{"name":"a","namespace":"default","resourceVersion":"1",
                         "deletionTimestamp":"2024-05-01T10:00:00Z","finalizers":["example.com/a"]}})",
                     R"({"metadata":{"name":"a","namespace":"default","resourceVersion":"1",
                         "deletionTimestamp":"2024-05-01T10:00:00Z",
                         "finalizers":["example.com/a","example.com/b"]}})");
  EXPECT_THAT(errs,
              ::testing::Contains(
                  "metadata.finalizers: Forbidden: no new finalizers can be added if the "
                  "object is being deleted, found new finalizers []string{\"example.com/b\"}"));
}

TEST(Metadata, InvalidMessageFormats) {
  const api::Resource& deploy = R("apps", "Deployment");
  std::vector<Cause> one = {
      {"FieldValueRequired", "Required value", "spec.template.spec.containers[0].image"}};
  EXPECT_EQ(invalid_message(deploy, "web", one),
            "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: "
            "Required value");
  std::vector<Cause> two = {
      one[0], one[0], {"FieldValueRequired", "Required value", "spec.selector"}};
  EXPECT_EQ(invalid_message(deploy, "web", two),
            "Deployment.apps \"web\" is invalid: [spec.template.spec.containers[0].image: Required "
            "value, spec.selector: Required value]");
  EXPECT_EQ(invalid_message(R("", "Pod"), "p", {}), "Pod \"p\" is invalid");
  EXPECT_EQ(invalid_message(R("", "Pod"), "p", one),
            "Pod \"p\" is invalid: spec.template.spec.containers[0].image: Required value");
}

TEST(Metadata, LabelSelectorValidation) {
  json::value sel = J(R"({"matchLabels":{"app":"web"},"matchExpressions":[
      {"key":"tier","operator":"In"},
      {"key":"env","operator":"Exists","values":["x"]},
      {"key":"zone","operator":"Near","values":["a"]},
      {"key":"app","operator":"NotIn","values":["bad value"]}]})");
  EXPECT_THAT(
      texts(validate_label_selector(&sel, Path().child("spec", "selector"))),
      ElementsAre(
          "spec.selector.matchExpressions[0].values: Required value: must be specified when "
          "`operator` is 'In' or 'NotIn'",
          "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when "
          "`operator` is 'Exists' or 'DoesNotExist'",
          "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid "
          "selector operator",
          cat("spec.selector.matchExpressions[3].values[0]: Invalid value: \"bad value\": ",
              kLabelValueMsg)));
}

TEST(Metadata, SelectorMatching) {
  json::value labels = J(R"({"app":"web","tier":"frontend"})");
  auto sel = [](const char* s) {
    static json::value keep;
    keep = J(s);
    return as_selector(&keep);
  };
  EXPECT_TRUE(sel(R"({"matchLabels":{"app":"web"}})")->matches(&labels));
  EXPECT_FALSE(sel(R"({"matchLabels":{"app":"db"}})")->matches(&labels));
  EXPECT_TRUE(
      sel(R"({"matchExpressions":[{"key":"tier","operator":"In","values":["frontend","x"]}]})")
          ->matches(&labels));
  EXPECT_FALSE(
      sel(R"({"matchExpressions":[{"key":"tier","operator":"NotIn","values":["frontend"]}]})")
          ->matches(&labels));
  EXPECT_TRUE(
      sel(R"({"matchExpressions":[{"key":"env","operator":"DoesNotExist"}]})")->matches(&labels));
  EXPECT_FALSE(
      sel(R"({"matchExpressions":[{"key":"env","operator":"Exists"}]})")->matches(&labels));
  EXPECT_TRUE(sel("{}")->empty());
  EXPECT_FALSE(as_selector(nullptr)->matches(&labels));
  EXPECT_FALSE(sel(R"({"matchExpressions":[{"key":"a","operator":"Bogus"}]})"));
}

TEST(Metadata, SemanticEqualIgnoresNullsAndEmptyLists) {
  json::value a = J(R"({"x":1,"y":null,"z":[]})");
  json::value b = J(R"({"x":1})");
  EXPECT_TRUE(semantic_equal(&a, &b));
  json::value c = J(R"({"x":2})");
  EXPECT_FALSE(semantic_equal(&a, &c));
}

}  // namespace
}  // namespace podwarp::validation
