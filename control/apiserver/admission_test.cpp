// The ServiceAccount admission's mutations of a new pod, the Priority admission, and the
// DefaultStorageClass admission of claims.
#include "apiserver/admission.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace podwarp::apiserver {
namespace {

json::value parse(std::string_view s) {
  auto v = parse_json(s);
  EXPECT_TRUE(v) << s;
  return *v;
}

std::string fixed() { return "abcde"; }

TEST(ServiceAccountAdmission, DefaultsNameAndMountsTheProjectedVolumeEverywhere) {
  json::value pod = parse(R"({"metadata":{"name":"p"},"spec":{
      "initContainers":[{"name":"i"}],
      "containers":[{"name":"a"},{"name":"b","volumeMounts":[{"name":"data","mountPath":"/data"}]}],
      "volumes":[{"name":"data","emptyDir":{}}]}})");
  admit_service_account(pod, nullptr, fixed);
  EXPECT_EQ(get_string(pod, {"spec", "serviceAccountName"}), "default");
  const json::array& vols = pod.at("spec").at("volumes").as_array();
  ASSERT_EQ(vols.size(), 2u);
  EXPECT_EQ(vols[1], parse(R"({"name":"kube-api-access-abcde","projected":{"defaultMode":420,"sources":[
      {"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},
      {"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},
      {"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}]}})"));
  json::value mount = parse(R"({"name":"kube-api-access-abcde","readOnly":true,
      "mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"})");
  EXPECT_EQ(pod.at("spec").at("initContainers").at(0).at("volumeMounts").as_array().back(), mount);
  EXPECT_EQ(pod.at("spec").at("containers").at(0).at("volumeMounts").as_array().back(), mount);
  const json::array& b = pod.at("spec").at("containers").at(1).at("volumeMounts").as_array();
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[1], mount);
}

TEST(ServiceAccountAdmission, AutomountFalseOnPodOrServiceAccount) {
  json::value pod = parse(R"({"spec":{"automountServiceAccountToken":false,
      "serviceAccountName":"robot","containers":[{"name":"a"}]}})");
  admit_service_account(pod, nullptr, fixed);
  EXPECT_EQ(get_string(pod, {"spec", "serviceAccountName"}), "robot");
  EXPECT_EQ(pod.at("spec").as_object().if_contains("volumes"), nullptr);
  EXPECT_EQ(pod.at("spec").at("containers").at(0).as_object().if_contains("volumeMounts"), nullptr);

  json::value sa = parse(R"({"automountServiceAccountToken":false})");
  pod = parse(R"({"spec":{"containers":[{"name":"a"}]}})");
  admit_service_account(pod, &sa, fixed);
  EXPECT_EQ(pod.at("spec").as_object().if_contains("volumes"), nullptr);
  // The pod's true wins over the ServiceAccount's false.
  pod = parse(R"({"spec":{"automountServiceAccountToken":true,"containers":[{"name":"a"}]}})");
  admit_service_account(pod, &sa, fixed);
  EXPECT_EQ(pod.at("spec").at("volumes").as_array().size(), 1u);
}

TEST(ServiceAccountAdmission, ExistingMountOrVolumeIsKept) {
  // Every container mounts something at the path already: no volume is added.
  json::value pod = parse(R"({"spec":{"containers":[{"name":"a","volumeMounts":[
      {"name":"mine","mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}]}]}})");
  admit_service_account(pod, nullptr, fixed);
  EXPECT_EQ(pod.at("spec").as_object().if_contains("volumes"), nullptr);
  EXPECT_EQ(pod.at("spec").at("containers").at(0).at("volumeMounts").as_array().size(), 1u);
  // A kube-api-access-* volume exists (e.g. a re-created pod spec): it is reused.
  pod = parse(R"({"spec":{"containers":[{"name":"a"}],
      "volumes":[{"name":"kube-api-access-zzzzz","projected":{"sources":[]}}]}})");
  admit_service_account(pod, nullptr, fixed);
  EXPECT_EQ(pod.at("spec").at("volumes").as_array().size(), 1u);
  EXPECT_EQ(get_string(pod.at("spec").at("containers").at(0).at("volumeMounts").at(0), {"name"}),
            "kube-api-access-zzzzz");
}

TEST(ServiceAccountAdmission, MirrorPodsAndPullSecrets) {
  json::value pod = parse(R"({"metadata":{"annotations":{"kubernetes.io/config.mirror":"x"}},
      "spec":{"containers":[{"name":"a"}]}})");
  admit_service_account(pod, nullptr, fixed);
  EXPECT_EQ(pod.at("spec").as_object().if_contains("serviceAccountName"), nullptr);
  json::value sa = parse(R"({"imagePullSecrets":[{"name":"regcred"}]})");
  pod = parse(R"({"spec":{"containers":[{"name":"a"}]}})");
  admit_service_account(pod, &sa, fixed);
  EXPECT_EQ(pod.at("spec").at("imagePullSecrets"), parse(R"([{"name":"regcred"}])"));
  pod = parse(R"({"spec":{"imagePullSecrets":[{"name":"own"}],"containers":[{"name":"a"}]}})");
  admit_service_account(pod, &sa, fixed);
  EXPECT_EQ(pod.at("spec").at("imagePullSecrets"), parse(R"([{"name":"own"}])"));
}

struct Classes {
  std::vector<json::value> objs;
  std::vector<const json::value*> ptrs() const {
    std::vector<const json::value*> out;
    for (const json::value& o : objs) out.push_back(&o);
    return out;
  }
};

std::optional<std::string> admit(json::value& pod, const Classes& c) {
  return admit_priority(pod, c.ptrs());
}

TEST(PriorityAdmission, ResolvesTheClassOrTheGlobalDefault) {
  Classes c{{parse(R"({"metadata":{"name":"high"},"value":1000,"preemptionPolicy":"Never"})"),
             parse(R"({"metadata":{"name":"low"},"value":-10,"globalDefault":true})"),
             parse(R"({"metadata":{"name":"lower"},"value":-20,"globalDefault":true})")}};
  json::value pod = parse(R"({"metadata":{"name":"p"},"spec":{"priorityClassName":"high"}})");
  EXPECT_EQ(admit(pod, c), std::nullopt);
  EXPECT_EQ(get_int(pod, {"spec", "priority"}), 1000);
  EXPECT_EQ(get_string(pod, {"spec", "preemptionPolicy"}), "Never");
  // No class: the global default with the lowest value is named and applied.
  pod = parse(R"({"metadata":{"name":"p"},"spec":{}})");
  EXPECT_EQ(admit(pod, c), std::nullopt);
  EXPECT_EQ(get_string(pod, {"spec", "priorityClassName"}), "lower");
  EXPECT_EQ(get_int(pod, {"spec", "priority"}), -20);
  EXPECT_EQ(get_string(pod, {"spec", "preemptionPolicy"}), "PreemptLowerPriority");
  // No default: 0.
  pod = parse(R"({"metadata":{"name":"p"},"spec":{"priority":0}})");
  EXPECT_EQ(admit(pod, Classes{}), std::nullopt);
  EXPECT_EQ(get_int(pod, {"spec", "priority"}), 0);
  EXPECT_EQ(find_path(pod, {"spec", "priorityClassName"}), nullptr);
}

TEST(PriorityAdmission, RefusesUnknownClassesAndContradictions) {
  Classes c{{parse(R"({"metadata":{"name":"high"},"value":1000,"preemptionPolicy":"Never"})")}};
  json::value pod = parse(R"({"metadata":{"name":"p"},"spec":{"priorityClassName":"nope"}})");
  EXPECT_EQ(admit(pod, c), "no PriorityClass with name nope was found");
  pod = parse(R"({"metadata":{"name":"p"},"spec":{"priorityClassName":"high","priority":5}})");
  EXPECT_EQ(admit(pod, c),
            "the integer value of priority (5) must not be provided in pod spec; priority "
            "admission controller computed 1000 from the given PriorityClass name");
  pod = parse(R"({"metadata":{"name":"p"},"spec":{"priorityClassName":"high",
                  "preemptionPolicy":"PreemptLowerPriority"}})");
  EXPECT_EQ(admit(pod, c),
            "the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in "
            "pod spec; priority admission controller computed Never from the given PriorityClass "
            "name");
}

TEST(PriorityAdmission, OneGlobalDefault) {
  Classes c{{parse(R"({"metadata":{"name":"d"},"value":1,"globalDefault":true})")}};
  json::value other = parse(R"({"metadata":{"name":"e"},"value":2,"globalDefault":true})");
  EXPECT_EQ(admit_priority_class(other, true, c.ptrs()),
            "PriorityClass d is already marked as default. Only one default can exist");
  EXPECT_EQ(admit_priority_class(other, false, c.ptrs()),
            "PriorityClass d is already marked as default. Only one default can exist");
  EXPECT_EQ(admit_priority_class(c.objs[0], false, c.ptrs()), std::nullopt);  // itself
  EXPECT_EQ(admit_priority_class(parse(R"({"metadata":{"name":"e"},"value":2})"), true, c.ptrs()),
            std::nullopt);
}

TEST(DefaultStorageClassAdmission, ClaimsWithoutAClassGetTheNewestDefault) {
  auto sc = [](std::string_view name, std::string_view created, std::string_view is_default) {
    return parse(fmt::format(R"({{"metadata":{{"name":"{}","creationTimestamp":"{}",
        "annotations":{{"storageclass.kubernetes.io/is-default-class":"{}"}}}},
        "provisioner":"p"}})",
                             name, created, is_default));
  };
  Classes c{{sc("old", "2025-01-01T00:00:00Z", "true"), sc("new", "2025-02-01T00:00:00Z", "true"),
             sc("newest", "2025-03-01T00:00:00Z", "false")}};
  json::value pvc = parse(R"({"metadata":{"name":"data"},"spec":{}})");
  admit_default_storage_class(pvc, c.ptrs());
  EXPECT_EQ(get_string(pvc, {"spec", "storageClassName"}), "new");
  // A class named, even "", or the beta annotation: left alone.
  for (const char* text : {R"({"metadata":{"name":"data"},"spec":{"storageClassName":""}})",
                           R"({"metadata":{"name":"data","annotations":{
                               "volume.beta.kubernetes.io/storage-class":"x"}},"spec":{}})"}) {
    json::value named = parse(text);
    json::value before = named;
    admit_default_storage_class(named, c.ptrs());
    EXPECT_EQ(named, before);
  }
  pvc = parse(R"({"metadata":{"name":"data"},"spec":{}})");
  admit_default_storage_class(pvc, Classes{{sc("only", "2025-01-01T00:00:00Z", "false")}}.ptrs());
  EXPECT_EQ(find_path(pvc, {"spec", "storageClassName"}), nullptr);
}

}  // namespace
}  // namespace podwarp::apiserver
