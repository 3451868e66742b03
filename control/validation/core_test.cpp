// core/v1 defaulting and validation: realistic manifests, exact upstream messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/json_fields.h"
#include "validation/test_util.h"
#include "validation/validation.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using namespace testing;  // NOLINT: test helpers

// An object as the apiserver stores it: defaulted on create, then given a resourceVersion.
json::value stored(std::string_view group, std::string_view kind, std::string_view text) {
  json::value v = J(text);
  apply_defaults(R(group, kind), v);
  v.as_object()["metadata"].as_object()["resourceVersion"] = "1";
  return v;
}

std::vector<std::string> check_update(std::string_view group, std::string_view kind,
                                      const json::value& old, json::value now) {
  apply_defaults(R(group, kind), now);
  return texts(validate(R(group, kind), now, &old));
}

// ---------------------------------------------------------------------------------------------
// Pod

TEST(PodDefaults, WhatKubectlShows) {
  json::value pod = J(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"name":"nginx","namespace":"default"},
    "spec":{"containers":[{"name":"nginx","image":"nginx:1.27","ports":[{"containerPort":80}],
        "livenessProbe":{"httpGet":{"port":80}},
        "env":[{"name":"POD_NAME","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],
        "resources":{"limits":{"cpu":"500m","memory":"128Mi"}}}],
      "volumes":[{"name":"cache"},{"name":"cfg","configMap":{"name":"app"}}]}})");
  apply_defaults(R("", "Pod"), pod);
  json::value want = J(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"name":"nginx","namespace":"default"},
    "spec":{
      "containers":[{"name":"nginx","image":"nginx:1.27",
        "ports":[{"containerPort":80,"protocol":"TCP"}],
        "livenessProbe":{"httpGet":{"port":80,"path":"/","scheme":"HTTP"},"timeoutSeconds":1,
                         "periodSeconds":10,"successThreshold":1,"failureThreshold":3},
        "env":[{"name":"POD_NAME","valueFrom":{"fieldRef":{"fieldPath":"metadata.name",
                                                           "apiVersion":"v1"}}}],
        "resources":{"limits":{"cpu":"500m","memory":"128Mi"},
                     "requests":{"cpu":"500m","memory":"128Mi"}},
        "imagePullPolicy":"IfNotPresent","terminationMessagePath":"/dev/termination-log",
        "terminationMessagePolicy":"File"}],
      "volumes":[{"name":"cache","emptyDir":{}},
                 {"name":"cfg","configMap":{"name":"app","defaultMode":420}}],
      "dnsPolicy":"ClusterFirst","restartPolicy":"Always","securityContext":{},
      "terminationGracePeriodSeconds":30,"schedulerName":"default-scheduler",
      "serviceAccountName":"default","serviceAccount":"default","enableServiceLinks":true,
      "priority":0,"preemptionPolicy":"PreemptLowerPriority",
      "tolerations":[
        {"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute",
         "tolerationSeconds":300},
        {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute",
         "tolerationSeconds":300}]},
    "status":{"phase":"Pending","qosClass":"Guaranteed"}})");
  EXPECT_EQ(pod, want) << json::serialize(pod);
  EXPECT_THAT(texts(validate(R("", "Pod"), pod, nullptr)), IsEmpty());
  // Idempotent.
  json::value again = pod;
  apply_defaults(R("", "Pod"), again);
  EXPECT_EQ(again, pod);
}

TEST(PodDefaults, ImagePullPolicyFollowsTheTag) {
  struct Case {
    const char* image;
    const char* policy;
  };
  for (auto [image, policy] :
       {Case{"nginx", "Always"}, Case{"nginx:latest", "Always"}, Case{"nginx:1.27", "IfNotPresent"},
        Case{"registry:5000/team/app", "Always"}, Case{"registry:5000/team/app:v2", "IfNotPresent"},
        Case{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
             "IfNotPresent"}}) {
    json::value pod = J(
        R"({"metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"c"}]}})");
    pod.as_object()["spec"].as_object()["containers"].as_array()[0].as_object()["image"] = image;
    apply_defaults(R("", "Pod"), pod);
    EXPECT_EQ(
        json::value_to<std::string>(pod.at("spec").at("containers").at(0).at("imagePullPolicy")),
        policy)
        << image;
  }
}

TEST(PodDefaults, QosClasses) {
  auto qos = [](const char* resources) {
    json::value pod = J(
        std::string(
            R"({"metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"c","image":"i","resources":)") +
        resources + "}]}}");
    apply_defaults(R("", "Pod"), pod);
    return json::value_to<std::string>(pod.at("status").at("qosClass"));
  };
  EXPECT_EQ(qos("{}"), "BestEffort");
  EXPECT_EQ(qos(R"({"requests":{"cpu":"100m"}})"), "Burstable");
  EXPECT_EQ(qos(R"({"limits":{"cpu":"1","memory":"1Gi"}})"), "Guaranteed");
  EXPECT_EQ(qos(R"({"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"500m"}})"), "Burstable");
}

// DefaultTolerationSeconds admission adds only what the pod does not tolerate already; an
// empty key (with Exists) or an empty effect tolerates the taint, a NoSchedule one does not.
TEST(PodDefaults, DefaultTolerationSecondsKeepsExistingTolerations) {
  auto tolerations = [](const char* given) {
    json::value pod = J(std::string(R"({"metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"c","image":"i"}],"tolerations":)") +
                        given + "}}");
    apply_defaults(R("", "Pod"), pod);
    std::vector<std::string> out;
    for (const auto& t : pod.at("spec").at("tolerations").as_array()) {
      std::string s(json::value_to<std::string>(t.as_object().contains("key") ? t.at("key") : json::value("*")));
      s += "/" + (t.as_object().contains("effect") ? json::value_to<std::string>(t.at("effect")) : std::string("*"));
      if (t.as_object().contains("tolerationSeconds")) s += "/" + json::serialize(t.at("tolerationSeconds"));
      out.push_back(s);
    }
    return out;
  };
  EXPECT_THAT(tolerations(R"([{"operator":"Exists"}])"), ElementsAre("*/*"));
  EXPECT_THAT(tolerations(R"([{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":10}])"),
              ElementsAre("node.kubernetes.io/not-ready/NoExecute/10",
                          "node.kubernetes.io/unreachable/NoExecute/300"));
  EXPECT_THAT(tolerations(R"([{"key":"node.kubernetes.io/unreachable","operator":"Exists"}])"),
              ElementsAre("node.kubernetes.io/unreachable/*",
                          "node.kubernetes.io/not-ready/NoExecute/300"));
  EXPECT_THAT(tolerations(R"([{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoSchedule"}])"),
              ElementsAre("node.kubernetes.io/unreachable/NoSchedule",
                          "node.kubernetes.io/not-ready/NoExecute/300",
                          "node.kubernetes.io/unreachable/NoExecute/300"));
}

TEST(PodDefaults, QuantitiesAreCanonical) {
  json::value pod = J(R"({"metadata":{"name":"p","namespace":"default"},"spec":{"containers":[
      {"name":"c","image":"i","resources":{"requests":{"cpu":"1000m","memory":"1024Mi"}}}]}})");
  apply_defaults(R("", "Pod"), pod);
  EXPECT_EQ(pod.at("spec").at("containers").at(0).at("resources"),
            J(R"({"requests":{"cpu":"1","memory":"1Gi"}})"));
}

std::string pod_with(std::string_view spec_fields) {
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"},
            "spec":{)" +
         std::string(spec_fields) + "}}";
}

struct Case {
  std::string name;
  std::string spec;
  std::vector<std::string> want;
};

class PodCreate : public ::testing::TestWithParam<Case> {};

TEST_P(PodCreate, Messages) {
  EXPECT_EQ(create("", "Pod", pod_with(GetParam().spec)), GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PodCreate,
    ::testing::Values(
        Case{"valid", R"("containers":[{"name":"app","image":"nginx"}])", {}},
        Case{"no_containers", R"("containers":[])", {"spec.containers: Required value"}},
        Case{"missing_image",
             R"("containers":[{"name":"app"}])",
             {"spec.containers[0].image: Required value"}},
        Case{"container_name",
             R"("containers":[{"name":"App","image":"nginx"}])",
             {cat("spec.containers[0].name: Invalid value: \"App\": ", kLabelMsg)}},
        Case{"duplicate_across_init_and_app",
             R"("initContainers":[{"name":"app","image":"busybox"}],
                "containers":[{"name":"app","image":"nginx"}])",
             {"spec.initContainers[0].name: Duplicate value: \"app\""}},
        Case{"port_range",
             R"("containers":[{"name":"app","image":"nginx","ports":[{"containerPort":70000}]}])",
             {"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 "
              "and 65535, inclusive"}},
        Case{
            "port_protocol",
            R"("containers":[{"name":"app","image":"nginx","ports":[{"containerPort":80,"protocol":"HTTP"}]}])",
            {"spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported "
             "values: \"SCTP\", \"TCP\", \"UDP\""}},
        Case{"restart_policy",
             R"("restartPolicy":"Sometimes","containers":[{"name":"app","image":"nginx"}])",
             {"spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: "
              "\"Always\", \"OnFailure\", \"Never\""}},
        Case{"dns_policy",
             R"("dnsPolicy":"Custom","containers":[{"name":"app","image":"nginx"}])",
             {"spec.dnsPolicy: Unsupported value: \"Custom\": supported values: "
              "\"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\""}},
        Case{
            "requests_above_limits",
            R"("containers":[{"name":"app","image":"nginx","resources":{"requests":{"cpu":"2"},"limits":{"cpu":"1"}}}])",
            {"spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or "
             "equal to cpu limit of 1"}},
        Case{
            "bad_quantity",
            R"("containers":[{"name":"app","image":"nginx","resources":{"limits":{"memory":"1.5 GB"}}}])",
            {"spec.containers[0].resources.limits[memory]: Invalid value: \"1.5 GB\": quantities "
             "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
             "spec.containers[0].resources.requests[memory]: Invalid value: \"1.5 GB\": "
             "quantities must match the regular expression "
             "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"}},
        Case{
            "negative_quantity",
            R"("containers":[{"name":"app","image":"nginx","resources":{"requests":{"memory":"-1Gi"}}}])",
            {"spec.containers[0].resources.requests[memory]: Invalid value: \"-1Gi\": must be "
             "greater than or equal to 0"}},
        Case{
            "extended_resource_must_equal_limit",
            R"("containers":[{"name":"app","image":"nginx","resources":{"limits":{"example.com/gpu":"1"},"requests":{"example.com/gpu":"2"}}}])",
            {"spec.containers[0].resources.requests: Invalid value: \"2\": must be equal to "
             "example.com/gpu limit of 1"}},
        Case{
            "unknown_resource",
            R"("containers":[{"name":"app","image":"nginx","resources":{"requests":{"gpu":"1"}}}])",
            {"spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a "
             "standard resource type or fully qualified",
             "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a "
             "standard resource for containers"}},
        Case{"duplicate_volumes",
             R"("volumes":[{"name":"data","emptyDir":{}},{"name":"data","emptyDir":{}}],
                "containers":[{"name":"app","image":"nginx"}])",
             {"spec.volumes[1].name: Duplicate value: \"data\""}},
        Case{"two_volume_sources",
             R"("volumes":[{"name":"v","emptyDir":{},"hostPath":{"path":"/tmp"}}],
                "containers":[{"name":"app","image":"nginx"}])",
             {"spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"}},
        Case{
            "secret_volume_needs_name",
            R"("volumes":[{"name":"s","secret":{}}],"containers":[{"name":"app","image":"nginx"}])",
            {"spec.volumes[0].secret.secretName: Required value"}},
        Case{
            "mount_of_missing_volume",
            R"("containers":[{"name":"app","image":"nginx","volumeMounts":[{"name":"missing","mountPath":"/data"}]}])",
            {"spec.containers[0].volumeMounts[0].name: Not found: \"missing\""}},
        Case{"mount_of_invalid_volume",
             R"("volumes":[{"name":"Bad"}],
                "containers":[{"name":"app","image":"nginx","volumeMounts":[{"name":"Bad","mountPath":"/data"}]}])",
             {cat("spec.volumes[0].name: Invalid value: \"Bad\": ", kLabelMsg),
              "spec.containers[0].volumeMounts[0].name: Not found: \"Bad\""}},
        Case{
            "probe_without_handler",
            R"("containers":[{"name":"app","image":"nginx","livenessProbe":{"initialDelaySeconds":5}}])",
            {"spec.containers[0].livenessProbe: Required value: must specify a handler type"}},
        Case{
            "probe_with_two_handlers",
            R"("containers":[{"name":"app","image":"nginx","readinessProbe":{"exec":{"command":["true"]},"tcpSocket":{"port":80}}}])",
            {"spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than "
             "1 handler type"}},
        Case{
            "liveness_success_threshold",
            R"("containers":[{"name":"app","image":"nginx","livenessProbe":{"tcpSocket":{"port":"http"},"successThreshold":2}}])",
            {"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"}},
        Case{
            "probe_port_name",
            R"("containers":[{"name":"app","image":"nginx","livenessProbe":{"httpGet":{"port":"8080"}}}])",
            {"spec.containers[0].livenessProbe.httpGet.port: Invalid value: \"8080\": must "
             "contain at least one letter (a-z)"}},
        Case{"env_name",
             R"("containers":[{"name":"app","image":"nginx","env":[{"name":"1X","value":"y"}]}])",
             {"spec.containers[0].env[0].name: Invalid value: \"1X\": a valid environment variable "
              "name must consist of alphabetic characters, digits, '_', '-', or '.', and must not "
              "start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex "
              "used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"}},
        Case{
            "env_field_ref_unknown",
            R"("containers":[{"name":"app","image":"nginx","env":[{"name":"X","valueFrom":{"fieldRef":{"fieldPath":"status.nodeIP"}}}]}])",
            {"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "
             "\"status.nodeIP\": error converting fieldPath: field label not supported: "
             "status.nodeIP"}},
        Case{
            "env_field_ref_not_for_env",
            R"("containers":[{"name":"app","image":"nginx","env":[{"name":"X","valueFrom":{"fieldRef":{"fieldPath":"spec.restartPolicy"}}}]}])",
            {"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "
             "\"spec.restartPolicy\": supported values: \"metadata.name\", "
             "\"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", "
             "\"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", "
             "\"status.podIP\", \"status.podIPs\""}},
        Case{
            "env_value_and_value_from",
            R"("containers":[{"name":"app","image":"nginx","env":[{"name":"X","value":"a","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}])",
            {"spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified "
             "when `value` is not empty"}},
        Case{"toleration_value_with_exists",
             R"("tolerations":[{"key":"k","operator":"Exists","value":"v"}],
                "containers":[{"name":"app","image":"nginx"}])",
             {"spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when "
              "`operator` is 'Exists'"}},
        Case{"active_deadline",
             R"("activeDeadlineSeconds":0,"containers":[{"name":"app","image":"nginx"}])",
             {"spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
              "inclusive"}},
        Case{
            "host_network_port",
            R"("hostNetwork":true,"containers":[{"name":"app","image":"nginx","ports":[{"containerPort":80,"hostPort":8080}]}])",
            {"spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match "
             "`containerPort` when `hostNetwork` is true"}},
        Case{
            "host_network_defaults_host_port",
            R"("hostNetwork":true,"containers":[{"name":"app","image":"nginx","ports":[{"containerPort":80}]}])",
            {}},
        Case{"image_whitespace",
             R"("containers":[{"name":"app","image":" nginx"}])",
             {"spec.containers[0].image: Invalid value: \" nginx\": must not have leading or "
              "trailing whitespace"}},
        Case{"ephemeral_on_create",
             R"("containers":[{"name":"app","image":"nginx"}],
                "ephemeralContainers":[{"name":"debug","image":"busybox"}])",
             {"spec.ephemeralContainers: Forbidden: cannot be set on create"}},
        Case{
            "init_container_probe",
            R"("initContainers":[{"name":"init","image":"busybox","readinessProbe":{"exec":{"command":["true"]}}}],
                "containers":[{"name":"app","image":"nginx"}])",
            {"spec.initContainers[0].readinessProbe: Forbidden: may not be set for init "
             "containers without restartPolicy=Always"}},
        Case{
            "sidecar_probe_allowed",
            R"("initContainers":[{"name":"proxy","image":"envoy","restartPolicy":"Always","readinessProbe":{"exec":{"command":["true"]}}}],
                "containers":[{"name":"app","image":"nginx"}])",
            {}},
        Case{"node_selector",
             R"("nodeSelector":{"disk":"fast ssd"},"containers":[{"name":"app","image":"nginx"}])",
             {cat("spec.nodeSelector: Invalid value: \"fast ssd\": ", kLabelValueMsg)}},
        Case{
            "host_port_conflict",
            R"("containers":[{"name":"a","image":"nginx","ports":[{"containerPort":80,"hostPort":80}]},
                              {"name":"b","image":"nginx","ports":[{"containerPort":81,"hostPort":80}]}])",
            {"spec.containers[1].ports[0].hostPort: Duplicate value: \"TCP//80\""}},
        Case{
            "config_map_key_path",
            R"("volumes":[{"name":"cfg","configMap":{"name":"app","items":[{"key":"a","path":"../etc"}]}}],
                "containers":[{"name":"app","image":"nginx"}])",
            {"spec.volumes[0].configMap.items[0].path: Invalid value: \"../etc\": must not "
             "contain '..'"}},
        Case{
            "affinity_weight",
            R"("affinity":{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":0,"preference":{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]}}]}},
                "containers":[{"name":"app","image":"nginx"}])",
            {"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]."
             "weight: Invalid value: 0: must be in the range 1-100"}}),
    [](const auto& info) { return info.param.name; });

TEST(PodCreate, InvalidMessage) {
  json::value pod = J(pod_with(R"("containers":[{"name":"nginx"}])"));
  apply_defaults(R("", "Pod"), pod);
  EXPECT_EQ(invalid_message(R("", "Pod"), "web", validate(R("", "Pod"), pod, nullptr)),
            "Pod \"web\" is invalid: spec.containers[0].image: Required value");
}

TEST(PodUpdate, ImageMayChange) {
  json::value old =
      stored("", "Pod", pod_with(R"("containers":[{"name":"app","image":"nginx:1.26"}])"));
  json::value now = old;
  now.at("spec").at("containers").at(0).as_object()["image"] = "nginx:1.27";
  EXPECT_THAT(check_update("", "Pod", old, now), IsEmpty());
}

TEST(PodUpdate, OtherSpecFieldsAreForbidden) {
  json::value old = stored("", "Pod", pod_with(R"("containers":[{"name":"app","image":"nginx"}])"));
  json::value now = old;
  now.at("spec").at("containers").at(0).as_object()["ports"] = J(R"([{"containerPort":80}])");
  auto errs = check_update("", "Pod", old, now);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_THAT(errs[0],
              StartsWith("spec: Forbidden: pod updates may not change fields other than "
                         "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                         "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                         "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
                         "be set to 1 if it was previously negative)\n"));
  EXPECT_THAT(errs[0], HasSubstr("spec.containers[0].ports"));
}

TEST(PodUpdate, ContainersMayNotBeAdded) {
  json::value old = stored("", "Pod", pod_with(R"("containers":[{"name":"app","image":"nginx"}])"));
  json::value now = old;
  now.at("spec").at("containers").as_array().push_back(J(R"({"name":"b","image":"busybox"})"));
  EXPECT_THAT(
      check_update("", "Pod", old, now),
      ElementsAre("spec.containers: Forbidden: pod updates may not add or remove containers"));
}

// pods/ephemeralcontainers: new ones are validated as ephemeral containers, existing ones stay.
std::vector<std::string> ephemeral_update(const json::value& old, json::value now) {
  apply_defaults(R("", "Pod"), now);
  return texts(validate_ephemeral_containers(R("", "Pod"), now, old));
}

TEST(PodEphemeralContainers, AddedValidatedNeitherRemovedNorChanged) {
  json::value old = stored("", "Pod", pod_with(R"("containers":[{"name":"app","image":"nginx"}])"));
  json::value added = old;
  added.at("spec").as_object()["ephemeralContainers"] =
      J(R"([{"name":"debugger","image":"busybox","targetContainerName":"app","stdin":true,"tty":true}])");
  EXPECT_THAT(ephemeral_update(old, added), IsEmpty());
  apply_defaults(R("", "Pod"), added);

  json::value bad = old;
  bad.at("spec").as_object()["ephemeralContainers"] = J(
      R"([{"name":"app","image":"busybox","targetContainerName":"nope","ports":[{"containerPort":80}]}])");
  EXPECT_THAT(ephemeral_update(old, bad),
              ElementsAre("spec.ephemeralContainers[0].name: Duplicate value: \"app\"",
                          "spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\"",
                          "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an "
                          "Ephemeral Container"));

  json::value removed = added;
  removed.at("spec").as_object().erase("ephemeralContainers");
  EXPECT_THAT(ephemeral_update(added, removed),
              ElementsAre("spec.ephemeralContainers: Forbidden: existing ephemeral containers "
                          "\"debugger\" may not be removed\n"));

  json::value changed = added;
  changed.at("spec").at("ephemeralContainers").at(0).as_object()["image"] = "alpine";
  auto errs = ephemeral_update(added, changed);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_THAT(errs[0], StartsWith("spec.ephemeralContainers[debugger]: Forbidden: existing "
                                  "ephemeral containers \"debugger\" may not be changed\n"));
  EXPECT_THAT(errs[0], HasSubstr("image"));
}

TEST(PodUpdate, TolerationsMayOnlyBeAdded) {
  json::value old = stored("", "Pod", pod_with(R"("containers":[{"name":"app","image":"nginx"}])"));
  json::value added = old;
  added.at("spec")
      .at("tolerations")
      .as_array()
      .push_back(J(R"({"key":"gpu","operator":"Exists","effect":"NoSchedule"})"));
  EXPECT_THAT(check_update("", "Pod", old, added), IsEmpty());
  json::value removed = old;
  removed.at("spec").at("tolerations").as_array().pop_back();
  EXPECT_THAT(check_update("", "Pod", old, removed),
              ElementsAre("spec.tolerations: Forbidden: existing toleration can not be modified "
                          "except its tolerationSeconds"));
}

TEST(PodUpdate, ActiveDeadlineOnlyShrinks) {
  json::value old = stored(
      "", "Pod",
      pod_with(R"("activeDeadlineSeconds":60,"containers":[{"name":"app","image":"nginx"}])"));
  json::value now = old;
  now.at("spec").as_object()["activeDeadlineSeconds"] = 120;
  EXPECT_THAT(check_update("", "Pod", old, now),
              ElementsAre("spec.activeDeadlineSeconds: Invalid value: 120: must be less than or "
                          "equal to previous value"));
  now.at("spec").as_object()["activeDeadlineSeconds"] = 30;
  EXPECT_THAT(check_update("", "Pod", old, now), IsEmpty());
}

TEST(PodStatus, QosClassAndNodeNameAreFixed) {
  json::value old = stored("", "Pod", pod_with(R"("containers":[{"name":"app","image":"nginx"}])"));
  json::value now = old;
  now.at("status").as_object()["qosClass"] = "Guaranteed";
  now.at("status").as_object()["podIPs"] = J(R"([{"ip":"10.0.0.1"},{"ip":"10.0.0.2"}])");
  now.at("spec").as_object()["nodeName"] = "node-1";
  EXPECT_THAT(
      texts(validate_status(R("", "Pod"), now, old)),
      ElementsAre("status.nodeName: Forbidden: may not be changed directly",
                  "status.qosClass: Invalid value: \"Guaranteed\": field is immutable",
                  "status.podIPs: Invalid value: [{\"ip\":\"10.0.0.1\"},{\"ip\":\"10.0.0.2\"}]: "
                  "may specify no more than one IP for each IP family"));
}

// ---------------------------------------------------------------------------------------------
// Service

TEST(ServiceDefaults, ClusterIPService) {
  json::value svc = J(R"({"metadata":{"name":"web","namespace":"default"},
      "spec":{"selector":{"app":"web"},"ports":[{"port":80},{"name":"metrics","port":9090,"targetPort":"metrics"}]}})");
  apply_defaults(R("", "Service"), svc);
  EXPECT_EQ(svc.at("spec"), J(R"({"selector":{"app":"web"},
      "ports":[{"port":80,"protocol":"TCP","targetPort":80},
               {"name":"metrics","port":9090,"targetPort":"metrics","protocol":"TCP"}],
      "sessionAffinity":"None","type":"ClusterIP","internalTrafficPolicy":"Cluster",
      "ipFamilyPolicy":"SingleStack","ipFamilies":["IPv4"]})"));
}

TEST(ServiceDefaults, LoadBalancerAndAffinity) {
  json::value svc = J(R"({"metadata":{"name":"web","namespace":"default"},
      "spec":{"type":"LoadBalancer","sessionAffinity":"ClientIP","clusterIP":"10.96.0.20",
              "ports":[{"port":443,"nodePort":31443}]}})");
  apply_defaults(R("", "Service"), svc);
  const json::value& spec = svc.at("spec");
  EXPECT_EQ(spec.at("externalTrafficPolicy"), "Cluster");
  EXPECT_EQ(spec.at("allocateLoadBalancerNodePorts"), true);
  EXPECT_EQ(spec.at("sessionAffinityConfig"), J(R"({"clientIP":{"timeoutSeconds":10800}})"));
  EXPECT_EQ(spec.at("clusterIPs"), J(R"(["10.96.0.20"])"));
  EXPECT_THAT(texts(validate(R("", "Service"), svc, nullptr)), IsEmpty());
}

std::string svc_with(std::string_view name, std::string_view spec) {
  return R"({"metadata":{"name":")" + std::string(name) + R"(","namespace":"default"},"spec":)" +
         std::string(spec) + "}";
}

TEST(ServiceCreate, Messages) {
  EXPECT_THAT(
      create("", "Service", svc_with("web", R"({"ports":[{"port":80},{"port":443}]})")),
      ElementsAre("spec.ports[0].name: Required value", "spec.ports[1].name: Required value"));
  EXPECT_THAT(
      create("", "Service",
             svc_with("web", R"({"ports":[{"name":"http","port":80},{"name":"http","port":81}]})")),
      ElementsAre("spec.ports[1].name: Duplicate value: \"http\""));
  EXPECT_THAT(
      create("", "Service", svc_with("web", R"({"type":"Internal","ports":[{"port":80}]})")),
      ElementsAre("spec.type: Unsupported value: \"Internal\": supported values: "
                  "\"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""));
  EXPECT_THAT(create("", "Service", svc_with("1web", R"({"ports":[{"port":80}]})")),
              ElementsAre(cat("metadata.name: Invalid value: \"1web\": ", kDns1035Msg)));
  EXPECT_THAT(create("", "Service", svc_with("web", R"({"ports":[]})")),
              ElementsAre("spec.ports: Required value"));
  EXPECT_THAT(create("", "Service",
                     svc_with("web", R"({"type":"NodePort","ports":[{"port":80,"nodePort":80}]})")),
              ElementsAre("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the "
                          "valid range. The range of valid ports is 30000-32767"));
  EXPECT_THAT(create("", "Service", svc_with("web", R"({"ports":[{"port":80,"nodePort":30080}]})")),
              ElementsAre("spec.ports[0].nodePort: Forbidden: may not be used when `type` is "
                          "'ClusterIP'"));
  EXPECT_THAT(create("", "Service", svc_with("web", R"({"ports":[{"port":0}]})")),
              ElementsAre("spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, "
                          "inclusive",
                          "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and "
                          "65535, inclusive"));
  EXPECT_THAT(create("", "Service",
                     svc_with("db", R"({"type":"ExternalName","externalName":"db.example.com"})")),
              IsEmpty());
  EXPECT_THAT(
      create("", "Service",
             svc_with("web",
                      R"({"clusterIP":"None","ports":[{"port":80}],"selector":{"app":"web"}})")),
      IsEmpty());
  EXPECT_THAT(
      create("", "Service", svc_with("web", R"({"ports":[{"port":80},{"port":80,"name":"b"}]})")),
      ElementsAre("spec.ports[0].name: Required value",
                  "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", "
                  "Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, "
                  "TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, "
                  "NodePort:0}"));
}

TEST(ServiceDefaults, HeadlessFamilies) {
  json::value with_selector = J(svc_with("db", R"({"clusterIP":"None","selector":{"app":"db"}})"));
  apply_defaults(R("", "Service"), with_selector);
  EXPECT_EQ(with_selector.at("spec").at("ipFamilyPolicy"), "SingleStack");
  EXPECT_EQ(with_selector.at("spec").at("clusterIPs"), J(R"(["None"])"));
  json::value selectorless = J(svc_with("db", R"({"clusterIP":"None"})"));
  apply_defaults(R("", "Service"), selectorless);
  EXPECT_EQ(selectorless.at("spec").at("ipFamilyPolicy"), "RequireDualStack");
  EXPECT_EQ(selectorless.at("spec").at("ipFamilies"), J(R"(["IPv4"])"));
  EXPECT_THAT(texts(validate(R("", "Service"), selectorless, nullptr)), IsEmpty());
}

TEST(ServiceUpdate, ClusterIPIsImmutable) {
  json::value old =
      stored("", "Service", svc_with("web", R"({"clusterIP":"10.96.0.10","ports":[{"port":80}]})"));
  json::value now = J(svc_with("web", R"({"clusterIP":"10.96.0.11","ports":[{"port":80}]})"));
  now.at("metadata").as_object()["resourceVersion"] = "1";
  EXPECT_THAT(check_update("", "Service", old, now),
              ElementsAre("spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.11\"}: may not "
                          "change once set"));
}

TEST(ServiceStatus, LoadBalancerIngress) {
  json::value old = stored("", "Service", svc_with("web", R"({"ports":[{"port":80}]})"));
  json::value now = old;
  now.as_object()["status"] = J(R"({"loadBalancer":{"ingress":[{"ip":"1.2.3.4"}]}})");
  EXPECT_THAT(texts(validate_status(R("", "Service"), now, old)),
              ElementsAre("status.loadBalancer.ingress: Forbidden: may only be used when "
                          "`spec.type` is 'LoadBalancer'"));
}

// ---------------------------------------------------------------------------------------------
// ConfigMap and Secret

TEST(ConfigMap, KeysSizeAndImmutability) {
  EXPECT_THAT(create("", "ConfigMap",
                     R"({"metadata":{"name":"c","namespace":"default"},"data":{"a b":"x"}})"),
              ElementsAre("data[a b]: Invalid value: \"a b\": a valid config key must consist of "
                          "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
                          "'KEY_NAME',  or 'key-name', regex used for validation is "
                          "'[-._a-zA-Z0-9]+')"));
  EXPECT_THAT(
      create(
          "", "ConfigMap",
          R"({"metadata":{"name":"c","namespace":"default"},"data":{"a":"x"},"binaryData":{"a":"YWI="}})"),
      ElementsAre("data[a]: Invalid value: \"a\": duplicate of key present in binaryData"));
  std::string big(1024 * 1024 + 1, 'x');
  EXPECT_THAT(
      create("", "ConfigMap",
             R"({"metadata":{"name":"c","namespace":"default"},"data":{"big":")" + big + R"("}})"),
      ElementsAre("[]: Too long: must have at most 1048576 bytes"));
  json::value old = stored(
      "", "ConfigMap",
      R"({"metadata":{"name":"c","namespace":"default"},"immutable":true,"data":{"a":"1"}})");
  json::value now = old;
  now.as_object()["data"] = J(R"({"a":"2"})");
  EXPECT_THAT(check_update("", "ConfigMap", old, now),
              ElementsAre("data: Forbidden: field is immutable when `immutable` is set"));
}

TEST(Secret, DefaultsMergeStringData) {
  json::value s =
      J(R"({"metadata":{"name":"db","namespace":"default"},"stringData":{"password":"s3cr3t"}})");
  apply_defaults(R("", "Secret"), s);
  EXPECT_EQ(s, J(R"({"metadata":{"name":"db","namespace":"default"},"type":"Opaque",
                     "data":{"password":"czNjcjN0"}})"));
}

TEST(Secret, TypeSpecificKeys) {
  EXPECT_THAT(create("", "Secret", R"({"metadata":{"name":"tls","namespace":"default"},
                                       "type":"kubernetes.io/tls","data":{"tls.crt":"YWI="}})"),
              ElementsAre("data[tls.key]: Required value"));
  EXPECT_THAT(
      create("", "Secret",
             R"({"metadata":{"name":"x","namespace":"default"},"data":{"k":"not base64!"}})"),
      ElementsAre("data[k]: Invalid value: \"<secret contents redacted>\": illegal base64 "
                  "data at input byte 3"));
  json::value old =
      stored("", "Secret", R"({"metadata":{"name":"x","namespace":"default"},"type":"Opaque"})");
  json::value now = old;
  now.as_object()["type"] = "kubernetes.io/tls";
  now.as_object()["data"] = J(R"({"tls.crt":"YWI=","tls.key":"YWI="})");
  EXPECT_THAT(check_update("", "Secret", old, now),
              ElementsAre("type: Invalid value: \"kubernetes.io/tls\": field is immutable"));
}

// ---------------------------------------------------------------------------------------------
// Namespace, Node, Endpoints, ServiceAccount, Event

TEST(Namespace, DefaultsAndName) {
  json::value ns = J(R"({"metadata":{"name":"team-a"}})");
  apply_defaults(R("", "Namespace"), ns);
  EXPECT_EQ(ns,
            J(R"({"metadata":{"name":"team-a","labels":{"kubernetes.io/metadata.name":"team-a"}},
                      "status":{"phase":"Active"},"spec":{"finalizers":["kubernetes"]}})"));
  EXPECT_THAT(create("", "Namespace", R"({"metadata":{"name":"Team_A"}})"),
              ElementsAre(cat("metadata.name: Invalid value: \"Team_A\": ", kLabelMsg)));
  EXPECT_THAT(create("", "Namespace", R"({"metadata":{"name":"team.a"}})"),
              ElementsAre("metadata.name: Invalid value: \"team.a\": must not contain dots"));
  // Finalizers are only added on create: the namespace controller removes them later.
  json::value finalizing = stored("", "Namespace", R"({"metadata":{"name":"team-a"}})");
  finalizing.at("spec").as_object()["finalizers"] = json::array();
  apply_defaults(R("", "Namespace"), finalizing);
  EXPECT_TRUE(finalizing.at("spec").at("finalizers").as_array().empty());
}

TEST(Namespace, StatusPhase) {
  json::value old = stored("", "Namespace", R"({"metadata":{"name":"team-a"}})");
  json::value now = old;
  now.at("status").as_object()["phase"] = "Terminating";
  EXPECT_THAT(texts(validate_status(R("", "Namespace"), now, old)),
              ElementsAre("status.Phase: Invalid value: \"Terminating\": may only be 'Active' if "
                          "`deletionTimestamp` is empty"));
}

TEST(Node, DefaultsAndTaints) {
  json::value node = J(
      R"({"metadata":{"name":"node-1"},"status":{"capacity":{"cpu":"4","memory":"8192Mi","pods":"110"}}})");
  apply_defaults(R("", "Node"), node);
  EXPECT_EQ(node.at("status").at("allocatable"), J(R"({"cpu":"4","memory":"8Gi","pods":"110"})"));
  EXPECT_THAT(create("", "Node", R"({"metadata":{"name":"node-1"},"spec":{"taints":[
      {"key":"gpu","effect":"NoSchedule"},{"key":"gpu","value":"x","effect":"NoSchedule"},
      {"key":"zone","effect":"Sometimes"}]}})"),
              ElementsAre("metadata.taints[1]: Duplicate value: core.Taint{Key:\"gpu\", "
                          "Value:\"x\", Effect:\"NoSchedule\", TimeAdded:(*v1.Time)(nil)}: taints "
                          "must be unique by key and effect pair",
                          "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported "
                          "values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""));
}

TEST(Endpoints, AddressesAndPorts) {
  json::value ep = J(R"({"metadata":{"name":"web","namespace":"default"},
      "subsets":[{"addresses":[{"ip":"10.0.0.5"}],"ports":[{"port":8080}]}]})");
  apply_defaults(R("", "Endpoints"), ep);
  EXPECT_EQ(ep.at("subsets").at(0).at("ports").at(0).at("protocol"), "TCP");
  EXPECT_THAT(texts(validate(R("", "Endpoints"), ep, nullptr)), IsEmpty());
  EXPECT_THAT(create("", "Endpoints", R"({"metadata":{"name":"web","namespace":"default"},
      "subsets":[{"addresses":[{"ip":"127.0.0.1"}]},{"ports":[{"port":80}]}]})"),
              ElementsAre("subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be "
                          "in the loopback range (127.0.0.0/8, ::1/128)",
                          "subsets[1]: Required value: must specify `addresses` or "
                          "`notReadyAddresses`"));
}

TEST(ServiceAccount, Name) {
  EXPECT_THAT(create("", "ServiceAccount", R"({"metadata":{"name":"builder","namespace":"ci"}})"),
              IsEmpty());
  EXPECT_THAT(create("", "ServiceAccount", R"({"metadata":{"name":"Builder","namespace":"ci"}})"),
              ElementsAre(cat("metadata.name: Invalid value: \"Builder\": ", kSubdomainMsg)));
}

TEST(Event, InvolvedObjectNamespace) {
  EXPECT_THAT(create("", "Event", R"({"metadata":{"name":"web.17a","namespace":"default"},
      "involvedObject":{"kind":"Pod","name":"web","namespace":"default"},"reason":"Started"})"),
              IsEmpty());
  EXPECT_THAT(create("", "Event", R"({"metadata":{"name":"web.17a","namespace":"default"},
      "involvedObject":{"kind":"Pod","name":"web","namespace":"other"}})"),
              ElementsAre("involvedObject.namespace: Invalid value: \"other\": does not match "
                          "event.namespace"));
  EXPECT_THAT(create("", "Event", R"({"metadata":{"name":"a/b","namespace":"default"},
      "involvedObject":{"namespace":"default"}})"),
              ElementsAre("metadata.name: Invalid value: \"a/b\": may not contain '/'"));
}

}  // namespace
}  // namespace podwarp::validation
