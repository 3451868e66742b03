// The persistent-volume controller (upstream pkg/controller/volume/persistentvolume, the
// "persistentvolume-binder"), with the local-path provisioner built in.
//
// Claim life (one key per claim, "c:<ns>/<name>"):
//   Pending, no spec.volumeName --(best matching PV, or a PV pre-bound to it)--> bind
//   Pending, class provisioned by podwarp.io/local-path, nothing matched --(node known)-->
//     create PV pvc-<claim uid> pre-bound to the claim --> bind
//   Pending with spec.volumeName --(that PV fits and is free or pre-bound to it)--> bind
//   Bound --(its PV gone)--> Lost
// bind = PV spec.claimRef, PV status Bound, claim spec.volumeName + bind annotations, claim
// status Bound with the PV's access modes and capacity; each step is a write with the cached
// resourceVersion, so two claims racing for one PV end with one 409 (retried from the cache).
//
// Volume life (one key per PV, "v:<name>"): no claimRef -> Available; claimRef to a live claim
// -> Available until that claim binds it, then Bound; claimRef with the uid of a claim that no
// longer exists -> Released, then for reclaim policy Delete on a PV we provisioned the PV
// object is deleted (its host directory stays: noded has no safe way to remove it yet);
// Retain keeps it Released. Recycle is not implemented (stays Released).
//
// The node of a WaitForFirstConsumer claim is the annotation volume.kubernetes.io/selected-node
// or the spec.nodeName of a pod in its namespace that uses it; an Immediate claim of the
// local-path class takes the annotation or the first Ready node by name.
//
// Inputs: persistentvolumes, persistentvolumeclaims, storageclasses, pods, nodes (informers).
// Outputs: PV create/update/status/delete, claim update/status, Events on claims.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base.h"

namespace podwarp::controllers {

inline constexpr std::string_view kLocalPathProvisioner = "podwarp.io/local-path";
// On every volume the local-path provisioner creates: the noded of the volume's node removes
// the host directory and then this finalizer when the volume is deleted
// (noded/agent/local_path.h). If that node is gone, the controller removes it.
inline constexpr std::string_view kLocalPathCleanupFinalizer = "podwarp.io/local-path-cleanup";

std::unique_ptr<loop::Controller> make_persistent_volume_controller(loop::ControllerContext& ctx);

// --- Pure logic (exposed for tests) --------------------------------------------------------

// The claim's storage class: spec.storageClassName, else the beta annotation, else "".
std::string claim_class(const json::value& claim);
// pv's claimRef names `claim` (namespace and name, and uid when the reference has one).
bool volume_bound_to_claim(const json::value& pv, const json::value& claim);
// Why `pv` cannot serve `claim` ("" when it can): capacity, access modes, class, volumeMode.
// The selector and the phase are not checked here.
std::string volume_mismatch(const json::value& pv, const json::value& claim);
// upstream FindMatchingVolume: a fitting PV pre-bound to the claim first; else, unless
// `wait_for_node`, the smallest fitting Available PV without claimRef that the claim's selector
// matches and whose node affinity admits `node` (when given).
client::ObjectPtr best_volume(const json::value& claim, const std::vector<client::ObjectPtr>& pvs,
                              const json::value* node, bool wait_for_node);
// The PV the local-path provisioner creates for `claim` of class `sc` on `node`.
json::value local_path_volume(const json::value& claim, const json::value& sc,
                              std::string_view node);

}  // namespace podwarp::controllers
