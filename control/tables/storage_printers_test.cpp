// PersistentVolume, PersistentVolumeClaim and StorageClass rows against what upstream's printers
// give.
#include <gtest/gtest.h>

#include "tables/tables.h"
#include "tables/test_util.h"

namespace podwarp::tables {
namespace {

using testing::cells;
using testing::parse;

TEST(StoragePrinters, PersistentVolumeBoundAndAvailable) {
  EXPECT_EQ(cells("", "PersistentVolume", R"({
    "metadata": {"name": "pv1", "creationTimestamp": "2025-01-15T11:00:00Z"},
    "spec": {"capacity": {"storage": "10Gi"},
             "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce", "ReadWriteOncePod"],
             "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast",
             "claimRef": {"namespace": "dev", "name": "data"}, "volumeMode": "Filesystem",
             "hostPath": {"path": "/srv"}},
    "status": {"phase": "Bound"}})"),
            parse(R"(["pv1", "10Gi", "RWO,RWX,RWOP", "Retain", "Bound", "dev/data", "fast",
                      "<unset>", "", "60m", "Filesystem"])"));
  // Deleting, no capacity, the beta class annotation over the spec's class.
  EXPECT_EQ(cells("", "PersistentVolume", R"({
    "metadata": {"name": "pv2", "deletionTimestamp": "2025-01-15T11:59:00Z",
                 "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
    "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "fast"},
    "status": {"phase": "Released", "reason": "Gone"}})"),
            parse(R"(["pv2", "0", "ROX", "", "Terminating", "", "old", "<unset>", "Gone",
                      "<unknown>", "<unset>"])"));
}

TEST(StoragePrinters, ClaimShowsCapacityAndModesOnlyOnceBound) {
  EXPECT_EQ(cells("", "PersistentVolumeClaim", R"({
    "metadata": {"name": "data", "namespace": "dev", "creationTimestamp": "2025-01-13T12:00:00Z"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
             "volumeMode": "Filesystem"},
    "status": {"phase": "Pending"}})"),
            parse(R"(["data", "Pending", "", "", "", "", "<unset>", "2d", "Filesystem"])"));
  EXPECT_EQ(cells("", "PersistentVolumeClaim", R"({
    "metadata": {"name": "data", "namespace": "dev", "creationTimestamp": "2025-01-13T12:00:00Z"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
             "storageClassName": "fast", "volumeName": "pv1", "volumeAttributesClassName": "gold"},
    "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}})"),
            parse(R"(["data", "Bound", "pv1", "10Gi", "RWO", "fast", "gold", "2d", "<unset>"])"));
}

TEST(StoragePrinters, StorageClassMarksTheDefault) {
  const char* sc = R"({
    "metadata": {"name": "standard", "creationTimestamp": "2025-01-15T11:00:00Z",
                 "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
    "volumeBindingMode": "WaitForFirstConsumer"})";
  EXPECT_EQ(cells("storage.k8s.io", "StorageClass", sc),
            parse(R"j(["standard (default)", "rancher.io/local-path", "Delete",
                      "WaitForFirstConsumer", false, "60m"])j"));
  EXPECT_TRUE(is_default_storage_class(parse(sc)));
  EXPECT_EQ(cells("storage.k8s.io", "StorageClass", R"({
    "metadata": {"name": "slow", "annotations":
                 {"storageclass.kubernetes.io/is-default-class": "false"}},
    "provisioner": "example.com/nfs", "allowVolumeExpansion": true})"),
            parse(R"(["slow", "example.com/nfs", "Delete", "Immediate", true, "<unknown>"])"));
}

}  // namespace
}  // namespace podwarp::tables
