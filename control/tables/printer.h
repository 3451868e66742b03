// The printers behind tables.h: one Printer per kind, each a column list and a cell function
// following upstream's print<Kind> in pkg/printers/internalversion/printers.go (v1.32).
//
// Printers are grouped by domain, one file each, and each file exports its list:
//   pod_printer.cpp        Pod
//   cluster_printers.cpp   Namespace, Node, Event, Lease, PriorityClass, ComponentStatus
//   config_printers.cpp    ConfigMap, Secret, ServiceAccount
//   network_printers.cpp   Service, Endpoints, EndpointSlice, Ingress, NetworkPolicy
//   workload_printers.cpp  Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob,
//                          PodDisruptionBudget
//   rbac_printers.cpp      RoleBinding, ClusterRoleBinding (Role, ClusterRole: the default table)
//   storage_printers.cpp   PersistentVolume, PersistentVolumeClaim, StorageClass
// tables.cpp collects the lists. All data here is constant; nothing is mutable.
#pragma once

#include <chrono>
#include <span>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::tables::detail {

// One upstream TableColumnDefinition.
struct Column {
  std::string_view name;
  std::string_view type;    // "string", "integer", "boolean" or "date", as upstream declares it
  std::string_view format;  // "name" for the column holding the object's name, else ""
  std::string_view description;
  int priority = 0;  // 1: only shown with -o wide
};

using CellsFn = json::array (*)(const json::value& obj, std::chrono::system_clock::time_point now);
// Row conditions (meta.k8s.io/v1 TableRowCondition); empty for most kinds.
using ConditionsFn = json::array (*)(const json::value& obj);

struct Printer {
  std::string_view group;  // "" for core
  std::string_view kind;
  std::span<const Column> columns;
  // Every column's cell, in order (the server always prints wide).
  CellsFn cells = nullptr;
  ConditionsFn conditions = nullptr;
};

std::span<const Printer> pod_printers();
std::span<const Printer> cluster_printers();
std::span<const Printer> config_printers();
std::span<const Printer> network_printers();
std::span<const Printer> workload_printers();
std::span<const Printer> rbac_printers();
std::span<const Printer> storage_printers();

// Upstream's descriptions, from the OpenAPI field docs; the long ones are cut after their first
// sentences.
inline constexpr std::string_view kNameDoc =
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
inline constexpr std::string_view kCreationTimestampDoc =
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
    "system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#metadata";
inline constexpr std::string_view kContainersDoc = "Names of each container in the template.";
inline constexpr std::string_view kImagesDoc =
    "Images referenced by each container in the template.";

// The Name and Age columns most kinds start and end with.
inline constexpr Column kNameColumn{"Name", "string", "name", kNameDoc};
inline constexpr Column kAgeColumn{"Age", "string", "", kCreationTimestampDoc};
// The wide Containers and Images columns of the kinds with a pod template.
inline constexpr Column kContainersColumn{"Containers", "string", "", kContainersDoc, 1};
inline constexpr Column kImagesColumn{"Images", "string", "", kImagesDoc, 1};

}  // namespace podwarp::tables::detail
