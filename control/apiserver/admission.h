// The ServiceAccount admission of pod creation, as upstream's plugin (mutating part):
//   - spec.serviceAccountName defaults to "default";
//   - unless automountServiceAccountToken is false (the pod's setting wins over the
//     ServiceAccount's), every init container and container without a mount at
//     /var/run/secrets/kubernetes.io/serviceaccount gets a read-only mount of the projected
//     volume "kube-api-access-<5 random>" (serviceAccountToken path "token" expiring after
//     3607 s, ConfigMap kube-root-ca.crt key ca.crt, downward API namespace; defaultMode 420),
//     which is added unless a kube-api-access-* volume exists already;
//   - the ServiceAccount's imagePullSecrets when the pod has none.
// Mirror pods (annotation kubernetes.io/config.mirror) are left alone.
//
// Divergence: a ServiceAccount that does not exist (yet) does not reject the pod; the defaults
// are applied as for one without settings.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::apiserver {

inline constexpr std::string_view kServiceAccountMountPath =
    "/var/run/secrets/kubernetes.io/serviceaccount";

// `sa` is the ServiceAccount object or nullptr; `suffix` makes the 5 random characters
// (upstream's alphabet bcdfghjklmnpqrstvwxz2456789).
void admit_service_account(json::value& pod, const json::value* sa,
                           const std::function<std::string()>& suffix);

// The Priority admission plugin (upstream plugin/pkg/admission/priority), on pod creation:
// spec.priorityClassName names a PriorityClass whose value becomes spec.priority and whose
// preemptionPolicy becomes spec.preemptionPolicy; without a name, the global default class
// (the lowest value of those marked globalDefault) is named and applied, and without one the
// priority is 0 (PreemptLowerPriority). `classes` are the stored PriorityClasses.
// Returns the reason for a 403 Forbidden: "no PriorityClass with name x was found", or a
// spec.priority / spec.preemptionPolicy that differs from the class's.
std::optional<std::string> admit_priority(json::value& pod,
                                          const std::vector<const json::value*>& classes);

// On PriorityClass create or update: a second globalDefault class is refused ("PriorityClass x
// is already marked as default. Only one default can exist"). `classes` are the stored ones.
std::optional<std::string> admit_priority_class(const json::value& pc, bool creating,
                                                const std::vector<const json::value*>& classes);

// The DefaultStorageClass admission plugin (upstream plugin/pkg/admission/storage/
// storageclass/setdefault), on PersistentVolumeClaim creation: a claim that names no class
// (spec.storageClassName absent, no volume.beta.kubernetes.io/storage-class annotation) gets the
// default StorageClass's name (annotated storageclass.kubernetes.io/is-default-class "true"; of
// several, the newest, then the first by name). `classes` are the stored StorageClasses.
void admit_default_storage_class(json::value& pvc, const std::vector<const json::value*>& classes);

}  // namespace podwarp::apiserver
