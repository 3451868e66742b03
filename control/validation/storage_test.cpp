// PersistentVolume, PersistentVolumeClaim and StorageClass validation and defaults, with
// upstream's messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

constexpr std::string_view kStorage = "storage.k8s.io";

json::value defaulted(std::string_view group, std::string_view kind, std::string_view text) {
  json::value v = J(text);
  apply_defaults(R(group, kind), v);
  return v;
}

TEST(PersistentVolume, DefaultsAndAValidHostPathVolume) {
  const char* pv = R"({"metadata":{"name":"pv1"},"spec":{"capacity":{"storage":"1024Mi"},
      "accessModes":["ReadWriteOnce"],"hostPath":{"path":"/srv/pv1"}}})";
  EXPECT_THAT(create("", "PersistentVolume", pv), IsEmpty());
  json::value v = defaulted("", "PersistentVolume", pv);
  EXPECT_EQ(get_string(v, {"spec", "persistentVolumeReclaimPolicy"}), "Retain");
  EXPECT_EQ(get_string(v, {"spec", "volumeMode"}), "Filesystem");
  EXPECT_EQ(get_string(v, {"spec", "capacity", "storage"}), "1Gi");
  EXPECT_EQ(get_string(v, {"status", "phase"}), "Pending");
  EXPECT_THAT(create("", "PersistentVolume", R"({"metadata":{"name":"pv1"},"spec":{
      "capacity":{"storage":"10Gi"},"accessModes":["ReadWriteMany"],
      "csi":{"driver":"hostpath.csi.k8s.io","volumeHandle":"v1","fsType":"ext4",
             "volumeAttributes":{"a":"b"}}}})"),
              IsEmpty());
}

TEST(PersistentVolume, NeedsCapacityAccessModesAndOneSource) {
  EXPECT_THAT(create("", "PersistentVolume", R"({"metadata":{"name":"pv1"},"spec":{}})"),
              ElementsAre("spec.accessModes: Required value", "spec.capacity: Required value",
                          "spec: Required value: must specify a volume type"));
  EXPECT_THAT(
      create("", "PersistentVolume", R"({"metadata":{"name":"pv1"},"spec":{
      "capacity":{"storage":"0"},"accessModes":["ReadWriteOncePod","Sometimes"],
      "persistentVolumeReclaimPolicy":"Keep",
      "hostPath":{"path":"/a/../b"},"nfs":{"server":"s","path":"/x"},
      "csi":{"driver":"d"}}})"),
      ElementsAre(
          "spec.accessModes: Unsupported value: \"Sometimes\": supported values: "
          "\"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
          "spec.capacity[storage]: Invalid value: \"0\": must be greater than zero",
          "spec.persistentVolumeReclaimPolicy: Unsupported value: \"Keep\": supported values: "
          "\"Delete\", \"Recycle\", \"Retain\"",
          "spec.nfs: Forbidden: may not specify more than 1 volume type",
          "spec.csi: Forbidden: may not specify more than 1 volume type",
          "spec.hostPath.path: Invalid value: \"/a/../b\": must not contain '..'"));
  EXPECT_THAT(
      create("", "PersistentVolume", R"({"metadata":{"name":"pv1"},"spec":{
      "capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"local":{"path":"/mnt/disk"}}})"),
      ElementsAre("spec.nodeAffinity: Required value: Local volume requires node affinity"));
  EXPECT_THAT(create("", "PersistentVolume", R"({"metadata":{"name":"pv1"},"spec":{
      "capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"local":{"path":"/mnt/disk"},
      "nodeAffinity":{"required":{"nodeSelectorTerms":[{"matchExpressions":[
        {"key":"kubernetes.io/hostname","operator":"In","values":["n1"]}]}]}}}})"),
              IsEmpty());
  EXPECT_THAT(create("", "PersistentVolume", R"({"metadata":{"name":"pv1"},"spec":{
      "capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"csi":{"driver":"d.example.com",
      "nodePublishSecretRef":{"name":"s"}}}})"),
              ElementsAre("spec.csi.volumeHandle: Required value",
                          "spec.csi.nodePublishSecretRef.namespace: Required value"));
}

TEST(PersistentVolume, SourceIsImmutable) {
  const char* before = R"({"metadata":{"name":"pv1","resourceVersion":"3"},"spec":{
      "capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"nfs":{"server":"s","path":"/x"}}})";
  EXPECT_THAT(update("", "PersistentVolume", before,
                     R"({"metadata":{"name":"pv1","resourceVersion":"3"},"spec":{
      "capacity":{"storage":"2Gi"},"accessModes":["ReadWriteOnce"],"nfs":{"server":"s","path":"/x"},
      "claimRef":{"namespace":"dev","name":"data"}}})"),
              IsEmpty());
  EXPECT_THAT(update("", "PersistentVolume", before,
                     R"({"metadata":{"name":"pv1","resourceVersion":"3"},"spec":{
      "capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"nfs":{"server":"t","path":"/x"}}})"),
              ElementsAre("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is "
                          "immutable after creation"));
}

TEST(PersistentVolumeClaim, DefaultsAndRequiredFields) {
  const char* pvc = R"({"metadata":{"name":"data","namespace":"dev"},"spec":{
      "accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}})";
  EXPECT_THAT(create("", "PersistentVolumeClaim", pvc), IsEmpty());
  json::value v = defaulted("", "PersistentVolumeClaim", pvc);
  EXPECT_EQ(get_string(v, {"spec", "volumeMode"}), "Filesystem");
  EXPECT_EQ(get_string(v, {"status", "phase"}), "Pending");
  EXPECT_EQ(find_path(v, {"spec", "storageClassName"}), nullptr);
  EXPECT_THAT(create("", "PersistentVolumeClaim",
                     R"({"metadata":{"name":"data","namespace":"dev"},"spec":{}})"),
              ElementsAre("spec.accessModes: Required value: at least 1 access mode is required",
                          "spec.resources[storage]: Required value"));
}

TEST(PersistentVolumeClaim, SpecIsImmutableButForExpansionOfBoundClaims) {
  const char* pending = R"({"metadata":{"name":"data","namespace":"dev","resourceVersion":"4"},
      "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}},
      "status":{"phase":"Pending"}})";
  // The binder names the volume once; a class may be set on a claim without one.
  EXPECT_THAT(update("", "PersistentVolumeClaim", pending,
                     R"({"metadata":{"name":"data","namespace":"dev","resourceVersion":"4"},
      "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},
              "volumeName":"pv1","storageClassName":"fast"},"status":{"phase":"Pending"}})"),
              IsEmpty());
  const std::string kImmutable =
      "spec: Forbidden: spec is immutable after creation except resources.requests and "
      "volumeAttributesClassName for bound claims";
  EXPECT_THAT(update("", "PersistentVolumeClaim", pending,
                     R"({"metadata":{"name":"data","namespace":"dev","resourceVersion":"4"},
      "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"2Gi"}}},
      "status":{"phase":"Pending"}})"),
              ElementsAre(kImmutable));
  const char* bound = R"({"metadata":{"name":"data","namespace":"dev","resourceVersion":"4"},
      "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},
              "volumeName":"pv1"},"status":{"phase":"Bound"}})";
  EXPECT_THAT(update("", "PersistentVolumeClaim", bound,
                     R"({"metadata":{"name":"data","namespace":"dev","resourceVersion":"4"},
      "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"2Gi"}},
              "volumeName":"pv1","volumeAttributesClassName":"gold"},"status":{"phase":"Bound"}})"),
              IsEmpty());
  EXPECT_THAT(update("", "PersistentVolumeClaim", bound,
                     R"({"metadata":{"name":"data","namespace":"dev","resourceVersion":"4"},
      "spec":{"accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"1Gi"}},
              "volumeName":"pv2"},"status":{"phase":"Bound"}})"),
              ElementsAre(kImmutable));
}

TEST(StorageClass, DefaultsProvisionerAndImmutableFields) {
  const char* sc = R"({"metadata":{"name":"fast","resourceVersion":"7"},
      "provisioner":"example.com/ssd","parameters":{"type":"ssd"}})";
  EXPECT_THAT(create(kStorage, "StorageClass", sc), IsEmpty());
  json::value v = defaulted(kStorage, "StorageClass", sc);
  EXPECT_EQ(get_string(v, {"reclaimPolicy"}), "Delete");
  EXPECT_EQ(get_string(v, {"volumeBindingMode"}), "Immediate");
  EXPECT_THAT(create(kStorage, "StorageClass", R"({"metadata":{"name":"x"},
      "reclaimPolicy":"Recycle","volumeBindingMode":"Later"})"),
              ElementsAre("provisioner: Required value",
                          "reclaimPolicy: Unsupported value: \"Recycle\": supported values: "
                          "\"Delete\", \"Retain\"",
                          "volumeBindingMode: Unsupported value: \"Later\": supported values: "
                          "\"Immediate\", \"WaitForFirstConsumer\""));
  EXPECT_THAT(update(kStorage, "StorageClass", sc, R"({"metadata":{"name":"fast",
      "resourceVersion":"7","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}},
      "provisioner":"example.com/ssd","parameters":{"type":"ssd"},"allowVolumeExpansion":true})"),
              IsEmpty());
  EXPECT_THAT(update(kStorage, "StorageClass", sc, R"({"metadata":{"name":"fast",
      "resourceVersion":"7"},"provisioner":"example.com/hdd","parameters":{"type":"hdd"},
      "reclaimPolicy":"Retain","volumeBindingMode":"WaitForFirstConsumer"})"),
              ElementsAre("parameters: Forbidden: updates to parameters are forbidden.",
                          "provisioner: Forbidden: updates to provisioner are forbidden.",
                          "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
                          "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is "
                          "immutable"));
}

}  // namespace
}  // namespace podwarp::validation
