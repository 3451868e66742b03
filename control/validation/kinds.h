// The table of kinds with defaulting and validation rules. Each API group's file (core.cpp,
// apps.cpp, batch.cpp, ...) exports its rows; validation.cpp looks rows up by group and kind.
//
// A new kind: write its defaults/validate/validate_status in its group's file, add a row to that
// group's table, and a test in <group>_test.cpp.
#pragma once

#include <span>
#include <string_view>

#include "podwarp/api/resources.h"
#include "podwarp/json.h"
#include "validation/field.h"

namespace podwarp::validation {

struct KindRules {
  std::string_view group;
  std::string_view kind;
  // SetDefaults_* for the kind. `creating` is true when metadata.resourceVersion is empty.
  void (*defaults)(json::object& obj, bool creating) = nullptr;
  // Create (old == nullptr) and update validation.
  Errors (*validate)(const api::Resource& r, const json::object& obj,
                     const json::object* old) = nullptr;
  // Status subresource validation; nullptr means metadata update rules only.
  Errors (*validate_status)(const api::Resource& r, const json::object& obj,
                            const json::object& old) = nullptr;
};

std::span<const KindRules> core_kinds();
// pods/ephemeralcontainers (upstream's ValidatePodEphemeralContainersUpdate), in core.cpp.
Errors pod_ephemeral_containers_update(const json::object& pod, const json::object& old);
std::span<const KindRules> apps_kinds();
std::span<const KindRules> batch_kinds();
std::span<const KindRules> networking_kinds();
std::span<const KindRules> policy_kinds();
std::span<const KindRules> discovery_kinds();
std::span<const KindRules> coordination_kinds();
std::span<const KindRules> autoscaling_kinds();
std::span<const KindRules> rbac_kinds();
std::span<const KindRules> scheduling_kinds();
// core/v1 PersistentVolume and PersistentVolumeClaim, storage.k8s.io/v1 StorageClass.
std::span<const KindRules> storage_kinds();

}  // namespace podwarp::validation
