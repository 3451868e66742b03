// rbac.authorization.k8s.io/v1 validation and defaults, with upstream's messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

constexpr std::string_view kRbac = "rbac.authorization.k8s.io";

TEST(Rbac, RolesNeedVerbsAndResourcesOrClusterWideUrls) {
  EXPECT_THAT(create(kRbac, "Role", R"({"metadata":{"name":"pod-reader","namespace":"dev"},
      "rules":[{"apiGroups":[""],"resources":["pods","pods/log"],"verbs":["get","list","watch"]}]})"),
              IsEmpty());
  // Names are path segments: colons are fine (system:controller:...), slashes are not.
  EXPECT_THAT(create(kRbac, "ClusterRole", R"({"metadata":{"name":"system:metrics"},
      "rules":[{"nonResourceURLs":["/metrics","/healthz/*"],"verbs":["get"]}]})"),
              IsEmpty());
  EXPECT_THAT(create(kRbac, "ClusterRole", R"({"metadata":{"name":"a/b"}})"),
              ElementsAre("metadata.name: Invalid value: \"a/b\": may not contain '/'"));
  EXPECT_THAT(
      create(kRbac, "Role", R"({"metadata":{"name":"r","namespace":"dev"},
      "rules":[{"resources":["pods"]},{"nonResourceURLs":["/api"],"resources":["pods"],"verbs":["get"]}]})"),
      ElementsAre("rules[0].verbs: Required value: verbs must contain at least one value",
                  "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                  "rules[1].nonResourceURLs: Invalid value: [\"/api\"]: namespaced rules cannot apply to non-resource URLs",
                  "rules[1].nonResourceURLs: Invalid value: [\"/api\"]: rules cannot apply to both regular resources and non-resource URLs"));
  EXPECT_THAT(create(kRbac, "ClusterRole", R"({"metadata":{"name":"agg"},"aggregationRule":{}})"),
              ElementsAre("aggregationRule.clusterRoleSelectors: Required value: at least one "
                          "clusterRoleSelector required if aggregationRule is non-nil"));
  EXPECT_THAT(create(kRbac, "ClusterRole", R"({"metadata":{"name":"agg"},"aggregationRule":{
      "clusterRoleSelectors":[{"matchLabels":{"rbac.example.com/aggregate-to-monitoring":"true"}}]}})"),
              IsEmpty());
}

TEST(Rbac, BindingsDefaultTheirGroupsAndCheckRoleRefAndSubjects) {
  EXPECT_THAT(create(kRbac, "RoleBinding", R"({"metadata":{"name":"read-pods","namespace":"dev"},
      "roleRef":{"kind":"Role","name":"pod-reader"},
      "subjects":[{"kind":"User","name":"jane"},{"kind":"Group","name":"qa"},
                  {"kind":"ServiceAccount","name":"ci"}]})"),
              IsEmpty());
  EXPECT_THAT(
      create(kRbac, "RoleBinding", R"({"metadata":{"name":"b","namespace":"dev"},
      "roleRef":{"apiGroup":"example.com","kind":"Secret","name":""},
      "subjects":[{"kind":"Robot","name":"r"},{"kind":"ServiceAccount","apiGroup":"x","name":"Bad_SA"},
                  {"kind":"User","apiGroup":"example.com"}]})"),
      ElementsAre(
          "roleRef.apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
          "roleRef.kind: Unsupported value: \"Secret\": supported values: \"Role\", \"ClusterRole\"",
          "roleRef.name: Required value",
          "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
          cat("subjects[1].name: Invalid value: \"Bad_SA\": ", kSubdomainMsg),
          "subjects[1].apiGroup: Unsupported value: \"x\": supported values: \"\"",
          "subjects[2].name: Required value",
          "subjects[2].apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\""));
  // Cluster-wide: only ClusterRoles, and service accounts name their namespace.
  EXPECT_THAT(create(kRbac, "ClusterRoleBinding", R"({"metadata":{"name":"b"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"},
      "subjects":[{"kind":"ServiceAccount","name":"ci"}]})"),
              ElementsAre("roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                          "subjects[0].namespace: Required value"));
}

TEST(Rbac, RoleRefIsImmutable) {
  const char* before = R"({"metadata":{"name":"b","namespace":"dev","resourceVersion":"5"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"}})";
  EXPECT_THAT(update(kRbac, "RoleBinding", before,
                     R"({"metadata":{"name":"b","namespace":"dev","resourceVersion":"5"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
      "subjects":[{"kind":"User","name":"jane"}]})"),
              IsEmpty());
  EXPECT_THAT(update(kRbac, "RoleBinding", before,
                     R"({"metadata":{"name":"b","namespace":"dev","resourceVersion":"5"},
      "roleRef":{"name":"edit","kind":"ClusterRole","apiGroup":"rbac.authorization.k8s.io"}})"),
              ElementsAre("roleRef: Invalid value: {\"apiGroup\":\"rbac.authorization.k8s.io\","
                          "\"kind\":\"ClusterRole\",\"name\":\"edit\"}: cannot change roleRef"));
}

}  // namespace
}  // namespace podwarp::validation
