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
#include <string>

#include "podwarp/json.h"

namespace podwarp::apiserver {

inline constexpr std::string_view kServiceAccountMountPath =
    "/var/run/secrets/kubernetes.io/serviceaccount";

// `sa` is the ServiceAccount object or nullptr; `suffix` makes the 5 random characters
// (upstream's alphabet bcdfghjklmnpqrstvwxz2456789).
void admit_service_account(json::value& pod, const json::value* sa,
                           const std::function<std::string()>& suffix);

}  // namespace podwarp::apiserver
