// apps/v1 defaulting and validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"
#include "validation/validation.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

constexpr std::string_view kPodTemplate = R"("template":{"metadata":{"labels":{"app":"web"}},
    "spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}})";

std::string deployment(std::string_view spec_fields) {
  return R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},
            "spec":{)" +
         std::string(spec_fields) + "}}";
}

json::value stored(std::string_view kind, std::string_view text) {
  json::value v = J(text);
  apply_defaults(R("apps", kind), v);
  v.as_object()["metadata"].as_object()["resourceVersion"] = "7";
  return v;
}

TEST(DeploymentDefaults, WhatKubectlShows) {
  json::value d =
      J(deployment(R"("selector":{"matchLabels":{"app":"web"}},)" + std::string(kPodTemplate)));
  apply_defaults(R("apps", "Deployment"), d);
  EXPECT_EQ(d.at("spec"), J(R"({"selector":{"matchLabels":{"app":"web"}},
      "replicas":1,
      "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},
      "revisionHistoryLimit":10,"progressDeadlineSeconds":600,
      "template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},
        "spec":{"containers":[{"name":"nginx","image":"nginx:1.27","imagePullPolicy":"IfNotPresent",
                               "terminationMessagePath":"/dev/termination-log",
                               "terminationMessagePolicy":"File","resources":{}}],
                "restartPolicy":"Always","terminationGracePeriodSeconds":30,
                "dnsPolicy":"ClusterFirst","securityContext":{},
                "schedulerName":"default-scheduler"}}})"))
      << json::serialize(d);
  EXPECT_THAT(texts(validate(R("apps", "Deployment"), d, nullptr)), IsEmpty());
}

TEST(DeploymentCreate, MissingSelector) {
  auto errs = create("apps", "Deployment", deployment(kPodTemplate));
  EXPECT_THAT(errs, ElementsAre("spec.selector: Required value",
                                "spec.template.metadata.labels: Invalid value: "
                                "map[string]string{\"app\":\"web\"}: `selector` does not match "
                                "template `labels`"));
  json::value d = J(deployment(kPodTemplate));
  apply_defaults(R("apps", "Deployment"), d);
  EXPECT_EQ(invalid_message(R("apps", "Deployment"), "web",
                            validate(R("apps", "Deployment"), d, nullptr)),
            "Deployment.apps \"web\" is invalid: [spec.selector: Required value, "
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: "
            "`selector` does not match template `labels`]");
}

TEST(DeploymentCreate, ImageRequired) {
  json::value d = J(deployment(R"("selector":{"matchLabels":{"app":"web"}},
      "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx"}]}})"));
  apply_defaults(R("apps", "Deployment"), d);
  EXPECT_EQ(
      invalid_message(R("apps", "Deployment"), "web",
                      validate(R("apps", "Deployment"), d, nullptr)),
      "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value");
}

struct Case {
  std::string name;
  std::string spec;
  std::vector<std::string> want;
};

class DeploymentCreate : public ::testing::TestWithParam<Case> {};

TEST_P(DeploymentCreate, Messages) {
  EXPECT_EQ(create("apps", "Deployment", deployment(GetParam().spec)), GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DeploymentCreate,
    ::testing::Values(
        Case{"selector_mismatch",
             R"("selector":{"matchLabels":{"app":"api"}},)" + std::string(kPodTemplate),
             {"spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: "
              "`selector` does not match template `labels`"}},
        Case{"empty_selector",
             R"("selector":{},)" + std::string(kPodTemplate),
             {"spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
              "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
              "deployment"}},
        Case{"negative_replicas",
             R"("replicas":-1,"selector":{"matchLabels":{"app":"web"}},)" +
                 std::string(kPodTemplate),
             {"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
        Case{"restart_policy_never",
             R"("selector":{"matchLabels":{"app":"web"}},
                "template":{"metadata":{"labels":{"app":"web"}},
                            "spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"i"}]}})",
             {"spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: "
              "\"Always\""}},
        Case{
            "no_surge_no_unavailable",
            R"("selector":{"matchLabels":{"app":"web"}},"strategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":"0%"}},)" +
                std::string(kPodTemplate),
            {"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "
             "intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: may not be 0 when `maxSurge` is "
             "0"}},
        Case{
            "unavailable_over_100",
            R"("selector":{"matchLabels":{"app":"web"}},"strategy":{"rollingUpdate":{"maxUnavailable":"120%"}},)" +
                std::string(kPodTemplate),
            {"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "
             "intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than "
             "100%"}},
        Case{
            "bad_percent",
            R"("selector":{"matchLabels":{"app":"web"}},"strategy":{"rollingUpdate":{"maxSurge":"abc"}},)" +
                std::string(kPodTemplate),
            {"spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, "
             "IntVal:0, StrVal:\"abc\"}: a valid percent string must be a numeric string "
             "followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is "
             "'[0-9]+%')"}},
        Case{
            "recreate_with_rolling_update",
            R"("selector":{"matchLabels":{"app":"web"}},"strategy":{"type":"Recreate","rollingUpdate":{}},)" +
                std::string(kPodTemplate),
            {"spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` "
             "is 'Recreate'"}},
        Case{"unknown_strategy",
             R"("selector":{"matchLabels":{"app":"web"}},"strategy":{"type":"BlueGreen"},)" +
                 std::string(kPodTemplate),
             {"spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"BlueGreen\", "
              "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "
              "\"Recreate\", \"RollingUpdate\""}},
        Case{"progress_deadline",
             R"("selector":{"matchLabels":{"app":"web"}},"minReadySeconds":600,)" +
                 std::string(kPodTemplate),
             {"spec.progressDeadlineSeconds: Invalid value: 600: must be greater than "
              "minReadySeconds"}},
        Case{"active_deadline",
             R"("selector":{"matchLabels":{"app":"web"}},
                "template":{"metadata":{"labels":{"app":"web"}},
                            "spec":{"activeDeadlineSeconds":10,"containers":[{"name":"c","image":"i"}]}})",
             {"spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
              "ReplicaSet is not Supported"}},
        Case{"template_label_value",
             R"("selector":{"matchLabels":{"app":"web"}},
                "template":{"metadata":{"labels":{"app":"web","v":"not ok"}},
                            "spec":{"containers":[{"name":"c","image":"i"}]}})",
             {cat("spec.template.labels: Invalid value: \"not ok\": ", kLabelValueMsg)}}),
    [](const auto& info) { return info.param.name; });

TEST(DeploymentUpdate, SelectorIsImmutable) {
  json::value old = stored("Deployment", deployment(R"("selector":{"matchLabels":{"app":"web"}},)" +
                                                    std::string(kPodTemplate)));
  json::value now = old;
  now.at("spec").as_object()["selector"] = J(R"({"matchLabels":{"app":"web","tier":"fe"}})");
  now.at("spec").at("template").at("metadata").as_object()["labels"] =
      J(R"({"app":"web","tier":"fe"})");
  EXPECT_THAT(
      texts(validate(R("apps", "Deployment"), now, &old)),
      ElementsAre("spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]"
                  "string{\"app\":\"web\", \"tier\":\"fe\"}, "
                  "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"));
  // Scaling and a new image are fine.
  json::value scaled = old;
  scaled.at("spec").as_object()["replicas"] = 5;
  scaled.at("spec").at("template").at("spec").at("containers").at(0).as_object()["image"] =
      "nginx:1.28";
  EXPECT_THAT(texts(validate(R("apps", "Deployment"), scaled, &old)), IsEmpty());
}

TEST(DeploymentStatus, Counters) {
  json::value old = stored("Deployment", deployment(R"("selector":{"matchLabels":{"app":"web"}},)" +
                                                    std::string(kPodTemplate)));
  json::value now = old;
  now.as_object()["status"] = J(R"({"replicas":1,"readyReplicas":2,"availableReplicas":-1})");
  EXPECT_THAT(
      texts(validate_status(R("apps", "Deployment"), now, old)),
      ElementsAre(
          "status.availableReplicas: Invalid value: -1: must be greater than or equal to 0",
          "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"));
}

TEST(ReplicaSet, DefaultsAndValidation) {
  json::value rs = J(R"({"metadata":{"name":"web-5d","namespace":"default"},
      "spec":{"selector":{"matchLabels":{"app":"web"}},)" +
                     std::string(kPodTemplate) + "}}");
  apply_defaults(R("apps", "ReplicaSet"), rs);
  EXPECT_EQ(rs.at("spec").at("replicas"), 1);
  EXPECT_THAT(texts(validate(R("apps", "ReplicaSet"), rs, nullptr)), IsEmpty());
  EXPECT_THAT(create("apps", "ReplicaSet",
                     R"({"metadata":{"name":"web","namespace":"default"},
      "spec":{"selector":{"matchExpressions":[{"key":"app","operator":"In","values":["db"]}]},)" +
                         std::string(kPodTemplate) + "}}"),
              ElementsAre("spec.template.metadata.labels: Invalid value: "
                          "map[string]string{\"app\":\"web\"}: `selector` does not match template "
                          "`labels`"));
}

TEST(DaemonSet, DefaultsAndStrategy) {
  json::value ds = J(R"({"metadata":{"name":"agent","namespace":"kube-system"},
      "spec":{"selector":{"matchLabels":{"app":"web"}},)" +
                     std::string(kPodTemplate) + "}}");
  apply_defaults(R("apps", "DaemonSet"), ds);
  EXPECT_EQ(ds.at("spec").at("updateStrategy"),
            J(R"({"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":0}})"));
  EXPECT_EQ(ds.at("spec").at("revisionHistoryLimit"), 10);
  EXPECT_THAT(texts(validate(R("apps", "DaemonSet"), ds, nullptr)), IsEmpty());
  EXPECT_THAT(create("apps", "DaemonSet",
                     R"({"metadata":{"name":"agent","namespace":"kube-system"},
      "spec":{"selector":{"matchLabels":{"app":"web"}},
              "updateStrategy":{"rollingUpdate":{"maxUnavailable":1,"maxSurge":1}},)" +
                         std::string(kPodTemplate) + "}}"),
              ElementsAre("spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: "
                          "intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: may not be set when "
                          "maxUnavailable is non-zero"));
  EXPECT_THAT(create("apps", "DaemonSet",
                     R"({"metadata":{"name":"agent","namespace":"kube-system"},
      "spec":{"selector":{"matchLabels":{"app":"web"}},
              "updateStrategy":{"rollingUpdate":{"maxUnavailable":0,"maxSurge":0}},)" +
                         std::string(kPodTemplate) + "}}"),
              ElementsAre("spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: "
                          "cannot be 0 when maxSurge is 0"));
}

constexpr std::string_view kStatefulSet = R"({"metadata":{"name":"db","namespace":"default"},
    "spec":{"serviceName":"db","selector":{"matchLabels":{"app":"db"}},
      "template":{"metadata":{"labels":{"app":"db"}},
        "spec":{"containers":[{"name":"pg","image":"postgres:16",
                               "volumeMounts":[{"name":"data","mountPath":"/var/lib/postgresql"}]}]}},
      "volumeClaimTemplates":[{"metadata":{"name":"data"},
        "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"10Gi"}}}}]}})";

TEST(StatefulSet, DefaultsAndClaimTemplates) {
  json::value sts = J(kStatefulSet);
  apply_defaults(R("apps", "StatefulSet"), sts);
  const json::value& spec = sts.at("spec");
  EXPECT_EQ(spec.at("replicas"), 1);
  EXPECT_EQ(spec.at("podManagementPolicy"), "OrderedReady");
  EXPECT_EQ(spec.at("updateStrategy"),
            J(R"({"type":"RollingUpdate","rollingUpdate":{"partition":0}})"));
  EXPECT_EQ(spec.at("revisionHistoryLimit"), 10);
  EXPECT_EQ(spec.at("persistentVolumeClaimRetentionPolicy"),
            J(R"({"whenDeleted":"Retain","whenScaled":"Retain"})"));
  EXPECT_EQ(spec.at("volumeClaimTemplates").at(0),
            J(R"({"apiVersion":"v1","kind":"PersistentVolumeClaim",
                  "metadata":{"name":"data","creationTimestamp":null},
                  "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"10Gi"}},
                          "volumeMode":"Filesystem"},
                  "status":{"phase":"Pending"}})"));
  // The mount of the claim template's volume is valid.
  EXPECT_THAT(texts(validate(R("apps", "StatefulSet"), sts, nullptr)), IsEmpty());
}

TEST(StatefulSet, NameIsADnsLabelAndClaimsNeedStorage) {
  std::string doc(kStatefulSet);
  doc.replace(doc.find("\"db\""), 4, "\"db.v2\"");
  EXPECT_THAT(create("apps", "StatefulSet", doc),
              ElementsAre("metadata.name: Invalid value: \"db.v2\": must not contain dots"));
  EXPECT_THAT(
      create("apps", "StatefulSet", R"({"metadata":{"name":"db","namespace":"default"},
      "spec":{"selector":{"matchLabels":{"app":"db"}},
        "template":{"metadata":{"labels":{"app":"db"}},"spec":{"containers":[{"name":"pg","image":"pg"}]}},
        "volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{}}]}})"),
      ElementsAre("spec.volumeClaimTemplates[0].spec.accessModes: Required value: at least 1 "
                  "access mode is required",
                  "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value"));
}

TEST(StatefulSet, UpdateForbidsOtherSpecFields) {
  json::value old = stored("StatefulSet", kStatefulSet);
  json::value now = old;
  now.at("spec").as_object()["serviceName"] = "db-headless";
  EXPECT_THAT(texts(validate(R("apps", "StatefulSet"), now, &old)),
              ElementsAre("spec: Forbidden: updates to statefulset spec for fields other than "
                          "'replicas', 'ordinals', 'template', 'updateStrategy', "
                          "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                          "'minReadySeconds' are forbidden"));
  json::value scaled = old;
  scaled.at("spec").as_object()["replicas"] = 3;
  EXPECT_THAT(texts(validate(R("apps", "StatefulSet"), scaled, &old)), IsEmpty());
}

}  // namespace
}  // namespace podwarp::validation
